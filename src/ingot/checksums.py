"""sha256 of a file, streamed: model weights and corpora can be gigabytes. One helper for
the model cache, derived model files and the evaluation corpus cache."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
