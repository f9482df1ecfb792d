"""What this machine can run: CPU features and memory, NVIDIA GPUs.

Profile selection (``models/profiles.py``) needs facts, not guesses: a profile for an
H100 must be refused on a laptop with a reason, and an AVX-512 or AMX kernel must not be
chosen where the instruction would fault. So:

* CPU flags come from ``/proc/cpuinfo``; the kernel hides AVX-512 when the OS does not save
  its registers, so the flag is enough there. AMX is different: a VM can advertise
  ``amx_tile`` and still fault on the first tile instruction (seen on these build VMs:
  llama.cpp's native build dies with "Illegal instruction"). When AMX is advertised we
  execute one tile instruction in a throw-away child process and call AMX usable only if
  the child survives.
* Usable cores and memory honour CPU affinity and cgroup limits (a container sees the
  host's /proc/meminfo, not its own limit).
* GPUs come from NVML (``nvidia-ml-py``) when it is installed, else from ``nvidia-smi
  --query-gpu`` when that binary exists, else there are none. Neither is a dependency.

Everything is plain data, so tests describe an H200 x8 node as easily as this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

GIB = 1024**3


@dataclass(frozen=True)
class CpuInfo:
    """The host CPU as a profile sees it."""

    model: str
    cores: int  # usable by this process (affinity and cgroup quota applied)
    memory_bytes: int  # usable by this process (cgroup limit applied)
    flags: frozenset[str] = field(default_factory=frozenset)
    amx_usable: bool = False  # advertised *and* a tile instruction ran in a child process

    @property
    def avx2(self) -> bool:
        return "avx2" in self.flags

    @property
    def avx512(self) -> bool:
        return "avx512f" in self.flags

    @property
    def amx_advertised(self) -> bool:
        return "amx_tile" in self.flags

    def has(self, feature: str) -> bool:
        """``avx2``, ``avx512``, ``amx`` (usable) or any raw /proc/cpuinfo flag."""
        if feature == "avx512":
            return self.avx512
        if feature == "amx":
            return self.amx_usable
        return feature in self.flags

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU."""

    index: int
    name: str  # as NVML reports it, e.g. "NVIDIA H100 80GB HBM3"
    memory_bytes: int
    compute_capability: tuple[int, int]

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB


@dataclass(frozen=True)
class Hardware:
    cpu: CpuInfo
    gpus: tuple[GpuInfo, ...] = ()
    gpu_source: str = "none"  # "nvml", "nvidia-smi", "none" or "simulated"

    def summary(self) -> list[str]:
        """Short human lines for ``ingot profiles``."""
        c = self.cpu
        features = [name for name, ok in (("AVX2", c.avx2), ("AVX-512", c.avx512)) if ok]
        if c.amx_advertised:
            features.append("AMX" if c.amx_usable else "AMX advertised but faults (unusable)")
        lines = [f"CPU: {c.model or 'unknown'}, {c.cores} cores, {c.memory_gib:.1f} GiB, "
                 f"{', '.join(features) or 'no AVX2'}"]
        if not self.gpus:
            lines.append(f"GPU: none found ({self.gpu_source})" if self.gpu_source != "none"
                         else "GPU: none (no NVML, no nvidia-smi)")
        for g in self.gpus:
            cc = ".".join(map(str, g.compute_capability))
            lines.append(f"GPU {g.index}: {g.name}, {g.memory_gib:.0f} GiB, compute capability {cc} ({self.gpu_source})")
        return lines

    def to_dict(self) -> dict:
        data = asdict(self)
        data["cpu"]["flags"] = sorted(self.cpu.flags)
        return data


# ---- CPU ----------------------------------------------------------------------------------


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """(model name, flags) from /proc/cpuinfo text (first processor block)."""
    model, flags = "", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        if model and flags:
            break
    return model, flags


def parse_meminfo_total(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cgroup_cpu_limit(cpu_max: str) -> float | None:
    """Cores allowed by a cgroup v2 ``cpu.max`` line ("max 100000" means no limit)."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        return int(parts[0]) / int(parts[1])
    except (ValueError, ZeroDivisionError):
        return None


def cgroup_memory_limit(memory_max: str) -> int | None:
    value = memory_max.strip()
    return int(value) if value.isdigit() else None


def _usable_cores() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit(_read("/sys/fs/cgroup/cpu.max"))
    if quota is not None:
        cores = max(1, min(cores, int(quota)))
    return cores


def _usable_memory() -> int:
    total = parse_meminfo_total(_read("/proc/meminfo"))
    limit = cgroup_memory_limit(_read("/sys/fs/cgroup/memory.max"))
    if limit is not None and (total == 0 or limit < total):
        return limit
    return total


# One AMX-TILE instruction (TILERELEASE, valid with no tile configured) then RET. Run in a
# child: where the hypervisor does not enable AMX state it raises #UD and the child dies.
_TILERELEASE_RET = bytes([0xC4, 0xE2, 0x78, 0x49, 0xC0, 0xC3])
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18
_SYS_ARCH_PRCTL = 158  # x86_64


def _probe_source(code: bytes, request_amx: bool) -> str:
    """A tiny Python program that executes ``code`` from an executable page."""
    return f"""
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
if {request_amx!r} and libc.syscall({_SYS_ARCH_PRCTL}, {_ARCH_REQ_XCOMP_PERM}, {_XFEATURE_XTILEDATA}) != 0:
    sys.exit(3)
page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write({code!r})
addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
ctypes.CFUNCTYPE(None)(addr)()
sys.exit(0)
"""


def instruction_runs(code: bytes, request_amx: bool = False, timeout: float = 10.0) -> bool:
    """True when machine code ``code`` (ending in RET) runs in a child process without a
    signal. Used for AMX; tests feed it a plain RET and UD2 to show it can tell."""
    try:
        done = subprocess.run([sys.executable, "-I", "-c", _probe_source(code, request_amx)],
                              capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def detect_cpu() -> CpuInfo:
    model, flags = parse_cpuinfo(_read("/proc/cpuinfo"))
    amx = False
    if "amx_tile" in flags and os.uname().machine == "x86_64":
        amx = instruction_runs(_TILERELEASE_RET, request_amx=True)
    return CpuInfo(model=model, cores=_usable_cores(), memory_bytes=_usable_memory(), flags=flags, amx_usable=amx)


# ---- NVIDIA GPUs ----------------------------------------------------------------------------

NVIDIA_SMI_QUERY = "index,name,memory.total,compute_cap"


def parse_nvidia_smi(csv_text: str) -> tuple[GpuInfo, ...]:
    """Parse ``nvidia-smi --query-gpu=index,name,memory.total,compute_cap
    --format=csv,noheader,nounits`` (memory in MiB)."""
    gpus = []
    for line in csv_text.strip().splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4:
            continue
        index, name, memory_mib, cc = fields
        try:
            major, _, minor = cc.partition(".")
            gpus.append(GpuInfo(index=int(index), name=name, memory_bytes=int(float(memory_mib)) * 1024**2,
                                compute_capability=(int(major), int(minor or 0))))
        except ValueError:
            continue
    return tuple(gpus)


def _gpus_from_nvml() -> tuple[GpuInfo, ...] | None:
    """None when NVML is not importable or finds no driver."""
    try:
        import pynvml  # type: ignore[import-not-found]  # from nvidia-ml-py, optional
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound / DriverNotLoaded
        return None
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            gpus.append(GpuInfo(
                index=i,
                name=name.decode() if isinstance(name, bytes) else name,
                memory_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                compute_capability=tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle)),  # type: ignore[arg-type]
            ))
        return tuple(gpus)
    finally:
        pynvml.nvmlShutdown()


def _gpus_from_nvidia_smi() -> tuple[GpuInfo, ...] | None:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        done = subprocess.run([binary, f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else ()


def detect_gpus() -> tuple[tuple[GpuInfo, ...], str]:
    found = _gpus_from_nvml()
    if found is not None:
        return found, "nvml"
    found = _gpus_from_nvidia_smi()
    if found is not None:
        return found, "nvidia-smi"
    return (), "none"


# ---- entry points -------------------------------------------------------------------------

SIMULATE_ENV = "INGOT_SIMULATE_HARDWARE"


def hardware_from_dict(data: dict) -> Hardware:
    """A hardware description from JSON (``Hardware.to_dict`` shape); memory may be given
    as ``memory_gib`` for readability. Used by tests and ``INGOT_SIMULATE_HARDWARE``."""
    cpu = data.get("cpu", {})
    memory = cpu.get("memory_bytes") or int(float(cpu.get("memory_gib", 0)) * GIB)
    cpu_info = CpuInfo(model=cpu.get("model", ""), cores=int(cpu.get("cores", 1)), memory_bytes=int(memory),
                       flags=frozenset(cpu.get("flags", ())), amx_usable=bool(cpu.get("amx_usable", False)))
    gpus = []
    for i, g in enumerate(data.get("gpus", ())):
        memory = g.get("memory_bytes") or int(float(g.get("memory_gib", 0)) * GIB)
        major, minor = g.get("compute_capability", (0, 0))
        gpus.append(GpuInfo(index=int(g.get("index", i)), name=g["name"], memory_bytes=int(memory),
                            compute_capability=(int(major), int(minor))))
    return Hardware(cpu=cpu_info, gpus=tuple(gpus), gpu_source=data.get("gpu_source", "simulated"))


def detect() -> Hardware:
    """This machine. ``INGOT_SIMULATE_HARDWARE`` (a JSON file path) replaces detection so
    operators can ask "what would a B200 x8 node pick?" from a laptop."""
    simulated = os.environ.get(SIMULATE_ENV)
    if simulated:
        return hardware_from_dict(json.loads(Path(simulated).read_text()))
    gpus, source = detect_gpus()
    return Hardware(cpu=detect_cpu(), gpus=gpus, gpu_source=source)
