"""Hardware detection: CPU flags, cgroup limits, AMX usability, NVIDIA GPUs via nvidia-smi."""

from __future__ import annotations

import json
import os
import platform
import stat
import sys
from pathlib import Path

import pytest

from ingot import hardware as hw

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw amx_tile amx_int8 amx_bf16

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2
"""

NVIDIA_SMI = """0, NVIDIA H100 80GB HBM3, 81559, 9.0
1, NVIDIA H100 80GB HBM3, 81559, 9.0
"""


def test_parse_cpuinfo_takes_the_first_processor():
    model, flags = hw.parse_cpuinfo(CPUINFO)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"
    assert {"avx2", "avx512f", "amx_tile"} <= flags


def test_amx_counts_only_when_usable():
    _, flags = hw.parse_cpuinfo(CPUINFO)
    advertised = hw.CpuInfo(model="x", cores=4, memory_bytes=8 * hw.GIB, flags=flags, amx_usable=False)
    assert advertised.amx_advertised and not advertised.has("amx")
    assert advertised.has("avx2") and advertised.has("avx512")
    lines = hw.Hardware(cpu=advertised).summary()
    assert "AMX advertised but faults" in lines[0]
    usable = hw.CpuInfo(model="x", cores=4, memory_bytes=8 * hw.GIB, flags=flags, amx_usable=True)
    assert usable.has("amx")


def test_meminfo_and_cgroup_limits():
    assert hw.parse_meminfo_total("MemTotal:       24684084 kB\nMemFree: 1 kB\n") == 24684084 * 1024
    assert hw.cgroup_cpu_limit("max 100000") is None
    assert hw.cgroup_cpu_limit("250000 100000") == 2.5
    assert hw.cgroup_memory_limit("max\n") is None
    assert hw.cgroup_memory_limit("4294967296\n") == 4 * hw.GIB


def test_parse_nvidia_smi():
    gpus = hw.parse_nvidia_smi(NVIDIA_SMI + "garbage line\n")
    assert len(gpus) == 2
    assert gpus[1].index == 1 and gpus[1].name == "NVIDIA H100 80GB HBM3"
    assert gpus[0].compute_capability == (9, 0)
    assert 79 < gpus[0].memory_gib < 80


@pytest.mark.skipif(platform.machine() != "x86_64" or sys.platform != "linux", reason="x86_64 Linux probe")
def test_instruction_probe_tells_a_running_instruction_from_a_faulting_one():
    assert hw.instruction_runs(bytes([0xC3])) is True  # RET
    assert hw.instruction_runs(bytes([0x0F, 0x0B, 0xC3])) is False  # UD2: SIGILL in the child


def test_detect_this_machine_without_gpu_tools(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    monkeypatch.setitem(sys.modules, "pynvml", None)  # NVML not importable
    monkeypatch.delenv(hw.SIMULATE_ENV, raising=False)
    found = hw.detect()
    assert found.cpu.cores >= 1 and found.cpu.memory_bytes > 0
    assert found.gpus == () and found.gpu_source == "none"
    if Path("/proc/cpuinfo").exists():
        assert found.cpu.flags  # read from /proc/cpuinfo
    assert "GPU: none" in "\n".join(found.summary())


def test_detect_reads_gpus_from_nvidia_smi(monkeypatch, tmp_path):
    # A stand-in nvidia-smi (no GPU on the test machines): a script that answers the exact
    # query ingot sends, and fails on anything else.
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = "--query-gpu={hw.NVIDIA_SMI_QUERY}" ] && [ "$2" = "--format=csv,noheader,nounits" ] || exit 9\n'
        f"cat <<'EOF'\n{NVIDIA_SMI}EOF\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.delenv(hw.SIMULATE_ENV, raising=False)
    found = hw.detect()
    assert found.gpu_source == "nvidia-smi"
    assert [g.name for g in found.gpus] == ["NVIDIA H100 80GB HBM3"] * 2


def test_simulated_hardware_round_trips(monkeypatch, tmp_path):
    description = {"cpu": {"model": "sim", "cores": 96, "memory_gib": 2048, "flags": ["avx2", "avx512f"]},
                   "gpus": [{"name": "NVIDIA B200", "memory_gib": 179, "compute_capability": [10, 0]}] * 8}
    path = tmp_path / "b200.json"
    path.write_text(json.dumps(description))
    monkeypatch.setenv(hw.SIMULATE_ENV, str(path))
    found = hw.detect()
    assert found.gpu_source == "simulated" and len(found.gpus) == 8
    assert [g.index for g in found.gpus] == list(range(8))
    again = hw.hardware_from_dict(found.to_dict())
    assert again.gpus == found.gpus and again.cpu.flags == found.cpu.flags
