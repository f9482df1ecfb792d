"""Settings precedence: flags > INGOT_* env > YAML file > defaults."""

from __future__ import annotations

import pytest

from ingot.config import SettingsError, load_settings


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("INGOT_THREADS", raising=False)
    monkeypatch.delenv("INGOT_MODELS_CACHE_DIR", raising=False)
    monkeypatch.delenv("INGOT_MODEL", raising=False)  # the suite pins SmolLM2 (conftest)
    monkeypatch.setenv("INGOT_DATA_DIR", str(tmp_path))
    s = load_settings()
    assert s.model == "auto"
    assert s.threads >= 1 and s.parallel == 8
    assert s.data_dir == tmp_path
    assert s.models_dir() == tmp_path / "models"


def test_a_shared_model_cache_is_outside_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("INGOT_DATA_DIR", str(tmp_path / "one"))
    monkeypatch.setenv("INGOT_MODELS_CACHE_DIR", str(tmp_path / "shared-models"))
    assert load_settings().models_dir() == tmp_path / "shared-models"


def test_precedence_yaml_env_flags(monkeypatch, tmp_path):
    cfg = tmp_path / "ingot.yaml"
    cfg.write_text("port: 9001\nparallel: 3\nmax_queue: 5\n")
    monkeypatch.setenv("INGOT_PARALLEL", "4")
    s = load_settings(cfg, max_queue=7)
    assert s.port == 9001  # from YAML
    assert s.parallel == 4  # env beats YAML
    assert s.max_queue == 7  # flag beats both


def test_config_from_env_var(monkeypatch, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("context_length: 1024\n")
    monkeypatch.setenv("INGOT_CONFIG", str(cfg))
    assert load_settings().context_length == 1024


def test_bad_values_name_the_field(monkeypatch, tmp_path):
    monkeypatch.setenv("INGOT_THREADS", "zero")
    with pytest.raises(SettingsError, match="threads"):
        load_settings()
    monkeypatch.delenv("INGOT_THREADS")
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("no_such_setting: 1\n")
    with pytest.raises(SettingsError, match="no_such_setting"):
        load_settings(bad)


def test_batch_must_fit_parallel(monkeypatch):
    with pytest.raises(SettingsError, match="batch_tokens"):
        load_settings(parallel=64, batch_tokens=32)


def test_auto_is_the_best_chat_model_installed_here(tmp_path):
    """``auto`` walks DEFAULT_CHAT_ORDER and takes the first model whose bytes are here: a
    GGUF that exists beats one that does not, whatever its rank; nothing installed falls
    back to the last (whose own install hint then explains)."""
    from ingot.models.registry import (
        DEFAULT_CHAT_ORDER, QWEN25_CODER_15B, SMOLLM2_135M, ModelSpec, default_chat_model, find_model,
    )
    from ingot.models.sources import LocalFile

    def local(name: str, exists: bool) -> ModelSpec:
        path = tmp_path / f"{name}.gguf"
        if exists:
            path.write_bytes(b"GGUF")
        return ModelSpec(id=name, kind="chat", source=LocalFile(path=path), sha256="", context_length=0,
                         description=name, license="test")

    best, present, other = local("best", False), local("present", True), local("other", True)
    assert default_chat_model(order=(best, present, other)).id == "present"
    assert default_chat_model(order=(local("a", False), local("b", False))).id == "b"
    assert DEFAULT_CHAT_ORDER[0] is QWEN25_CODER_15B and DEFAULT_CHAT_ORDER[-1] is SMOLLM2_135M
    expected = next((m for m in DEFAULT_CHAT_ORDER if m.source.available(tmp_path)), SMOLLM2_135M)
    assert find_model("AUTO", "chat", tmp_path) is expected
    with pytest.raises(KeyError):
        find_model("auto", "embedding")
