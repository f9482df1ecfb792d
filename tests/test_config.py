"""Settings precedence: flags > INGOT_* env > YAML file > defaults."""

from __future__ import annotations

import pytest

from ingot.config import SettingsError, load_settings


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("INGOT_THREADS", raising=False)
    monkeypatch.delenv("INGOT_MODELS_CACHE_DIR", raising=False)
    monkeypatch.setenv("INGOT_DATA_DIR", str(tmp_path))
    s = load_settings()
    assert s.model == "smollm2-135m-instruct"
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
