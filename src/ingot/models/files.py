"""Turn a catalog entry into a verified local weights file.

Why checks at every load: a model file that changed on disk (a corrupted download, a
different package version) must fail loudly instead of serving different answers.
Derived files (a model re-quantized for this CPU) are cached under ``data_dir/models/<id>``
with a manifest that records the source checksum they were made from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ingot.checksums import sha256_of
from ingot.models.registry import ModelSpec


class ModelFileError(RuntimeError):
    """The model's weights are missing or do not match their checksum."""


@dataclass(frozen=True)
class ModelFile:
    path: Path
    sha256: str
    precision: str  # "source" or a llama.cpp type name such as "q8_0"
    source_path: Path


Quantizer = Callable[[Path, Path, str], None]


def prepare_model_file(spec: ModelSpec, models_dir: Path, precision: str, quantize: Quantizer) -> ModelFile:
    """Locate (or assemble) the source file, verify it, and derive ``precision`` if asked.

    ``precision``: "auto" (the spec's preferred CPU precision), "source", or a type name.
    """
    cache = models_dir / spec.id
    try:
        source = spec.source.materialize(cache)
    except FileNotFoundError as exc:
        raise ModelFileError(str(exc)) from exc
    source_sha = sha256_of(source) if source.is_file() else ""
    if spec.sha256 and source_sha != spec.sha256:
        raise ModelFileError(
            f"checksum mismatch for {source}: expected sha256 {spec.sha256}, got {source_sha}; "
            f"reinstall it ({spec.source.install_hint()})"
        )
    wanted = spec.cpu_precision if precision == "auto" else precision
    if wanted in (None, "source"):
        return ModelFile(path=source, sha256=source_sha, precision="source", source_path=source)

    target = cache / f"{source.stem}.{wanted}.gguf"
    path, derived_sha = derived_file(target, source_sha, lambda out: quantize(source, out, wanted))
    return ModelFile(path=path, sha256=derived_sha, precision=wanted, source_path=source)


def derived_file(target: Path, source_sha: str, make: Callable[[Path], None]) -> tuple[Path, str]:
    """A file made from verified source bytes (a re-quantized model, an ONNX export),
    cached beside a manifest of the source checksum it came from. Rebuilt when the source
    changed or the file no longer matches its own recorded checksum; written to a partial
    file and renamed, so a crash never leaves a half-made model in place."""
    manifest = target.with_suffix(".json")
    if target.is_file() and manifest.is_file():
        recorded = json.loads(manifest.read_text())
        if recorded.get("source_sha256") == source_sha and recorded.get("sha256") == sha256_of(target):
            return target, recorded["sha256"]
    target.parent.mkdir(parents=True, exist_ok=True)
    # Per-process names: instances sharing one model cache may build the same file at once.
    partial = target.with_suffix(f".{os.getpid()}.partial")
    try:
        make(partial)
        digest = sha256_of(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    manifest_partial = manifest.with_suffix(f".{os.getpid()}.partial")
    manifest_partial.write_text(json.dumps({"source_sha256": source_sha, "sha256": digest}))
    os.replace(manifest_partial, manifest)
    return target, digest
