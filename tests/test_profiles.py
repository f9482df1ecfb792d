"""Profile selection: simulated machines pick the profile NIM's order says, every refusal
has a reason, INGOT_MODEL_PROFILE overrides, and this CPU machine keeps llama.cpp q8_0."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import replace

import pytest

from ingot.hardware import GIB, CpuInfo, GpuInfo, Hardware
from ingot.models.profiles import Profile, ProfileError, choose_profile, default_profiles, evaluate, select
from ingot.models.registry import LLAMA33_70B, QWEN25_CODER_05B, SMOLLM2_135M, find_model
from serverutil import REPO

BOTH = {"llama.cpp", "vllm"}
CPU = CpuInfo(model="Xeon", cores=64, memory_bytes=1024 * GIB, flags=frozenset({"avx2", "avx512f"}))


def gpus(name: str, memory_gib: float, cc: tuple[int, int], count: int) -> Hardware:
    return Hardware(cpu=CPU, gpus=tuple(GpuInfo(i, name, int(memory_gib * GIB), cc) for i in range(count)),
                    gpu_source="simulated")


CPU_ONLY = Hardware(cpu=CPU)
H100_X1 = gpus("NVIDIA H100 80GB HBM3", 79.6, (9, 0), 1)
H100_X8 = gpus("NVIDIA H100 80GB HBM3", 79.6, (9, 0), 8)
H200_X8 = gpus("NVIDIA H200", 140.4, (9, 0), 8)
B200_X8 = gpus("NVIDIA B200", 179.1, (10, 0), 8)
GB200_X4 = gpus("NVIDIA GB200", 184.0, (10, 0), 4)
A100_X4 = gpus("NVIDIA A100-SXM4-80GB", 79.2, (8, 0), 4)
T4_X1 = gpus("Tesla T4", 14.6, (7, 5), 1)


def chosen(spec, hardware, requested="auto", engines=BOTH) -> str | None:
    selection = select(spec, hardware, engines, requested)
    return selection.chosen.id if selection.chosen else None


@pytest.mark.parametrize("hardware, expected", [
    (CPU_ONLY, "llamacpp-cpu-q8_0"),
    (H100_X1, "vllm-bf16-tp1-throughput"),
    (H200_X8, "vllm-bf16-tp1-throughput"),
    (B200_X8, "vllm-bf16-tp1-throughput"),
    (T4_X1, "vllm-fp16-tp1-throughput"),  # no bf16 before Ampere
])
def test_smollm2_per_machine(hardware, expected):
    assert chosen(SMOLLM2_135M, hardware) == expected


@pytest.mark.parametrize("hardware, mode, expected", [
    (H200_X8, "auto", "vllm-h200-fp8-tp1-throughput"),      # fp8 fits one 141 GB GPU: most replicas per node
    (H200_X8, "latency", "vllm-h200-fp8-tp4-latency"),
    (B200_X8, "auto", "vllm-b200-nvfp4-tp1-throughput"),     # Blackwell: FP4 beats fp8 and bf16
    (B200_X8, "latency", "vllm-b200-nvfp4-tp4-latency"),
    (GB200_X4, "throughput", "vllm-gb200-nvfp4-tp1-throughput"),
    (H100_X8, "auto", "vllm-h100-fp8-tp2-throughput"),       # fp8 70B does not fit one 80 GB GPU
    (H100_X8, "latency", "vllm-h100-fp8-tp4-latency"),
    (A100_X4, "auto", "vllm-bf16-tp4-throughput"),           # no fp8 on Ampere: the generic bf16 profile
])
def test_llama70b_per_machine(hardware, mode, expected):
    assert chosen(LLAMA33_70B, hardware, mode) == expected


def test_h100_x1_cannot_run_70b_and_says_why():
    selection = select(LLAMA33_70B, H100_X1, BOTH)
    assert selection.chosen is None
    reasons = {e.profile.id: e.reasons for e in selection.evaluations}
    assert reasons["vllm-h100-fp8-tp2-throughput"] == ("needs 2 GPUs (tensor parallel); 1 suitable here",)
    assert "tuned for H200" in reasons["vllm-h200-fp8-tp1-throughput"][0]
    assert "nvfp4 needs compute capability >= 10.0" not in " ".join(reasons["vllm-b200-nvfp4-tp1-throughput"])
    assert "tuned for B200" in reasons["vllm-b200-nvfp4-tp1-throughput"][0]
    with pytest.raises(ProfileError, match="no profile of llama-3.3-70b-instruct can run here"):
        selection.require()


def test_cpu_only_rejects_every_gpu_profile_with_a_reason():
    selection = select(SMOLLM2_135M, CPU_ONLY, BOTH)
    assert selection.chosen.id == "llamacpp-cpu-q8_0"
    for e in selection.evaluations:
        if e.profile.on_gpu:
            assert e.reasons == ("no NVIDIA GPU found",)
    assert chosen(LLAMA33_70B, CPU_ONLY) is None


def test_gpu_without_vllm_installed_falls_back_to_the_cpu_profile():
    selection = select(SMOLLM2_135M, H100_X1, {"llama.cpp"})
    assert selection.chosen.id == "llamacpp-cpu-q8_0"
    bf16 = next(e for e in selection.evaluations if e.profile.id == "vllm-bf16-tp1-throughput")
    assert bf16.reasons and "vllm is not installed" in bf16.reasons[0]


def test_cpu_profile_needs_avx2_and_memory():
    old_cpu = Hardware(cpu=CpuInfo(model="old", cores=2, memory_bytes=512 * 1024**2, flags=frozenset({"sse2"})))
    evaluation = evaluate(SMOLLM2_135M.profiles[0], old_cpu, BOTH)
    assert evaluation.reasons == ("CPU lacks AVX2", "needs >= 1 GiB RAM; 0.5 GiB here")


def test_b200_tag_does_not_match_gb200_and_back():
    b200_only = [p for p in LLAMA33_70B.profiles if p.gpu == "b200"]
    assert all(evaluate(p, GB200_X4, BOTH).reasons[0].startswith("tuned for B200") for p in b200_only)
    gb200_only = [p for p in LLAMA33_70B.profiles if p.gpu == "gb200"]
    assert all(evaluate(p, B200_X8, BOTH).reasons[0].startswith("tuned for GB200") for p in gb200_only)


def test_choice_does_not_depend_on_catalog_order():
    for hardware in (H200_X8, B200_X8, H100_X8, A100_X4):
        for mode in ("throughput", "latency"):
            expected = chosen(LLAMA33_70B, hardware, mode)
            for seed in range(5):
                profiles = list(LLAMA33_70B.profiles)
                random.Random(seed).shuffle(profiles)
                shuffled = replace(LLAMA33_70B, profiles=tuple(profiles))
                assert chosen(shuffled, hardware, mode) == expected


def test_override_by_id():
    assert chosen(LLAMA33_70B, H200_X8, "vllm-bf16-tp8-latency") == "vllm-bf16-tp8-latency"
    selection = select(LLAMA33_70B, H200_X8, BOTH, "vllm-b200-nvfp4-tp1-throughput")
    assert selection.chosen is None
    assert "cannot run here: tuned for B200; GPUs here: NVIDIA H200" in selection.errors[0]
    unknown = select(SMOLLM2_135M, CPU_ONLY, BOTH, "vllm-h100-fp4-tp9")
    assert "unknown profile" in unknown.errors[0] and "llamacpp-cpu-q8_0" in unknown.errors[0]


def test_override_to_vllm_on_this_cpu_machine_names_the_missing_engine():
    with pytest.raises(ProfileError, match=r"engine vllm is not installed \(pip install 'ingot\[vllm\]'"):
        choose_profile(SMOLLM2_135M, "vllm-bf16-tp1-throughput",
                       hardware=gpus("NVIDIA H100 80GB HBM3", 79.6, (9, 0), 1))


def test_this_machine_keeps_the_llamacpp_q8_profile():
    """What `ingot serve` runs here must stay the measured CPU profile."""
    profile = choose_profile(SMOLLM2_135M)
    assert profile.engine == "llama.cpp" and profile.precision == "q8_0"
    assert choose_profile(QWEN25_CODER_05B).id == "llamacpp-cpu-q8_0"


def test_a_gguf_path_gets_one_cpu_profile(tmp_path):
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    spec = find_model(str(gguf))
    assert [p.id for p in default_profiles(spec)] == ["llamacpp-cpu-source"]


def test_profile_ids_follow_nim_naming_and_are_unique():
    for spec in (SMOLLM2_135M, QWEN25_CODER_05B, LLAMA33_70B):
        ids = [p.id for p in spec.profiles]
        assert len(ids) == len(set(ids)), spec.id
    assert Profile("vllm", "fp8", 2, "latency", gpu="h100").id == "vllm-h100-fp8-tp2-latency"


# ---- the commands -----------------------------------------------------------------------------


def _ingot(*args: str, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "ingot.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, "INGOT_THREADS": "1", **(env or {})})


def test_profiles_command_on_this_machine():
    r = _ingot("profiles")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "* llamacpp-cpu-q8_0" in out and "chosen: llamacpp-cpu-q8_0" in out
    assert "vllm-bf16-tp1-throughput" in out and "no: no NVIDIA GPU found" in out
    assert "chosen: none - no profile of llama-3.3-70b-instruct can run here" in out


def test_profiles_command_simulates_another_machine(tmp_path):
    description = {"cpu": {"model": "sim", "cores": 224, "memory_gib": 2048, "flags": ["avx2"]},
                   "gpus": [{"name": "NVIDIA H200", "memory_gib": 140.4, "compute_capability": [9, 0]}] * 8}
    path = tmp_path / "h200x8.json"
    path.write_text(json.dumps(description))
    r = _ingot("profiles", "--model", "llama-3.3-70b", "--hardware", str(path), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    (model,) = data["models"]
    rows = {p["id"]: p for p in model["profiles"]}
    # The GPUs fit; only the engine is missing on this test machine, and it says so.
    assert rows["vllm-h200-fp8-tp1-throughput"]["reasons"] == [
        "engine vllm is not installed (pip install 'ingot[vllm]' on a CUDA machine)"]
    assert any("tuned for B200" in r for r in rows["vllm-b200-nvfp4-tp1-throughput"]["reasons"])


def test_profiles_command_errors_are_one_line():
    r = _ingot("profiles", "--model", "gpt-9")
    assert r.returncode == 2 and "unknown model 'gpt-9'" in r.stderr and "Traceback" not in r.stderr


def test_serve_refuses_an_incompatible_profile(tmp_path):
    r = _ingot("serve", env={"INGOT_MODEL_PROFILE": "vllm-bf16-tp1-throughput", "INGOT_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2, r.stderr
    assert "profile vllm-bf16-tp1-throughput cannot run here" in r.stderr
    assert "ingot[vllm]" in r.stderr and "Traceback" not in r.stderr
