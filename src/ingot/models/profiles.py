"""Profiles: the ways one model can run (engine x precision x GPUs x target hardware), and
the choice of one for the machine at hand.

Why profiles and not flags: the same model ships as a GGUF for llama.cpp on a laptop CPU
and as bf16/fp8/nvfp4 checkpoints for vLLM on H100/H200/B200 GPUs. An operator should not
have to know which combination fits; the server detects the hardware, keeps the profiles
that can run (each refusal has a reason), and picks one with NIM's order:

1. compatible with this machine (hardware, and the engine installed);
2. preferred engine (vLLM on a GPU over llama.cpp on the CPU);
3. a profile tuned for this GPU over a generic one (NIM: optimized over generic);
4. lower precision that the hardware supports (nvfp4 < fp8 < bf16 < fp16);
5. the profile's own mode matching the wanted one;
6. throughput: fewest GPUs (more replicas per node); latency: most GPUs.

``INGOT_MODEL_PROFILE`` overrides: ``auto`` (throughput), ``latency``, ``throughput`` or a
profile id, which must be compatible or the server refuses to start.

The ``Profile`` type lives in models/profile_types.py (the catalog lists profiles without
importing this module) and is re-exported here.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from typing import Iterable

from ingot import hardware as _hardware
from ingot.hardware import GpuInfo, Hardware
from ingot.models.profile_types import GPU_TAGS, MIN_COMPUTE_CAPABILITY, EngineName, Mode, Profile
from ingot.models.registry import ModelSpec

__all__ = [
    "ENGINE_ORDER", "ENGINE_PACKAGES", "GPU_TAGS", "MIN_COMPUTE_CAPABILITY", "PRECISION_BITS", "EngineName",
    "Evaluation", "Mode", "Profile", "ProfileError", "Selection", "choose_profile", "default_profiles", "evaluate",
    "installed_engines", "rank_key", "select",
]

# Lower is preferred (step 2): a GPU engine beats the CPU engine whenever it can run.
ENGINE_ORDER: dict[str, int] = {"vllm": 0, "llama.cpp": 1}
# Bits per weight for step 4; fp16 ranks after bf16 at equal width (bf16 does not overflow).
PRECISION_BITS: dict[str, float] = {"nvfp4": 4, "fp8": 8, "bf16": 16, "fp16": 16.5}
ENGINE_PACKAGES: dict[str, tuple[str, str]] = {
    "llama.cpp": ("llama_cpp", "run scripts/install.sh (builds llama-cpp-python)"),
    "vllm": ("vllm", "pip install 'ingot[vllm]' on a CUDA machine"),
}


class ProfileError(ValueError):
    """No usable profile, or the requested one cannot run here. The message says why."""


@dataclass(frozen=True)
class Evaluation:
    profile: Profile
    reasons: tuple[str, ...] = ()  # empty: compatible

    @property
    def compatible(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Selection:
    model_id: str
    mode: Mode
    evaluations: tuple[Evaluation, ...]
    chosen: Profile | None
    requested: str  # the override as given ("auto", "latency", a profile id)
    errors: tuple[str, ...] = field(default=())

    def require(self) -> Profile:
        if self.chosen is None:
            raise ProfileError(self.errors[0] if self.errors else f"no profile for {self.model_id}")
        return self.chosen


def installed_engines() -> frozenset[str]:
    """Engines whose Python package is importable (found without importing it: vLLM's
    import alone takes seconds and initialises CUDA)."""
    found = set()
    for engine, (package, _) in ENGINE_PACKAGES.items():
        try:
            if importlib.util.find_spec(package) is not None:
                found.add(engine)
        except (ImportError, ValueError):
            pass
    return frozenset(found)


def default_profiles(spec: ModelSpec) -> tuple[Profile, ...]:
    """A spec's profiles; a GGUF given by path gets one llama.cpp profile (as shipped)."""
    if spec.profiles:
        return spec.profiles
    return (Profile(engine="llama.cpp", precision=spec.cpu_precision or "source", cpu_features=("avx2",)),)


def _gpu_matches_tag(gpu: GpuInfo, tag: str) -> bool:
    word = GPU_TAGS.get(tag, tag.upper())
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])", gpu.name, re.IGNORECASE) is not None


def _cc(value: tuple[int, int]) -> str:
    return f"{value[0]}.{value[1]}"


def _gpu_reasons(profile: Profile, gpus: tuple[GpuInfo, ...]) -> list[str]:
    if not gpus:
        return ["no NVIDIA GPU found"]
    need_cc = MIN_COMPUTE_CAPABILITY.get(profile.precision)
    if need_cc is None:
        return [f"unknown GPU precision {profile.precision!r}"]
    candidates = list(gpus)
    if profile.gpu:
        candidates = [g for g in candidates if _gpu_matches_tag(g, profile.gpu)]
        if not candidates:
            names = ", ".join(sorted({g.name for g in gpus}))
            return [f"tuned for {GPU_TAGS.get(profile.gpu, profile.gpu)}; GPUs here: {names}"]
    capable = [g for g in candidates if g.compute_capability >= need_cc]
    if not capable:
        have = ", ".join(sorted({_cc(g.compute_capability) for g in candidates}))
        return [f"{profile.precision} needs compute capability >= {_cc(need_cc)}; GPUs here have {have}"]
    roomy = [g for g in capable if g.memory_gib >= profile.min_gpu_memory_gib]
    if not roomy:
        largest = max(g.memory_gib for g in capable)
        return [f"needs >= {profile.min_gpu_memory_gib:g} GiB per GPU; largest here has {largest:.0f} GiB"]
    if len(roomy) < profile.tensor_parallel:
        return [f"needs {profile.tensor_parallel} GPUs (tensor parallel); {len(roomy)} suitable here"]
    return []


def evaluate(profile: Profile, hardware: Hardware, engines: Iterable[str]) -> Evaluation:
    """Every reason ``profile`` cannot run on ``hardware`` with ``engines`` installed."""
    reasons: list[str] = []
    if profile.on_gpu:
        reasons += _gpu_reasons(profile, hardware.gpus)
    else:
        missing = [f for f in profile.cpu_features if not hardware.cpu.has(f)]
        if missing:
            reasons.append(f"CPU lacks {', '.join(m.upper() for m in missing)}")
    if profile.min_memory_gib and hardware.cpu.memory_gib < profile.min_memory_gib:
        reasons.append(f"needs >= {profile.min_memory_gib:g} GiB RAM; {hardware.cpu.memory_gib:.1f} GiB here")
    if profile.engine not in set(engines):
        package, hint = ENGINE_PACKAGES[profile.engine]
        reasons.append(f"engine {profile.engine} is not installed ({hint})")
    return Evaluation(profile, tuple(reasons))


def rank_key(profile: Profile, mode: Mode) -> tuple:
    """Sort key implementing the selection order in this module's docstring."""
    gpus = profile.tensor_parallel if profile.on_gpu else 0
    return (
        ENGINE_ORDER.get(profile.engine, 99),
        0 if profile.gpu else 1,
        PRECISION_BITS.get(profile.precision, 32.0) if profile.on_gpu else 0,
        0 if profile.mode == mode else 1,
        gpus if mode == "throughput" else -gpus,
        profile.id,
    )


def select(
    spec: ModelSpec, hardware: Hardware, engines: Iterable[str] | None = None, requested: str = "auto"
) -> Selection:
    """Evaluate every profile of ``spec`` and choose one (never raises; see ``Selection``)."""
    engines = installed_engines() if engines is None else frozenset(engines)
    profiles = default_profiles(spec)
    evaluations = tuple(evaluate(p, hardware, engines) for p in profiles)
    wanted = (requested or "auto").strip()
    mode: Mode = "latency" if wanted.lower() == "latency" else "throughput"
    if wanted.lower() not in ("auto", "latency", "throughput"):
        match = [e for e in evaluations if e.profile.id.lower() == wanted.lower()]
        if not match:
            known = ", ".join(p.id for p in profiles)
            return Selection(spec.id, mode, evaluations, None, wanted,
                             (f"unknown profile {wanted!r} for model {spec.id}; its profiles: {known}",))
        chosen = match[0]
        if not chosen.compatible:
            return Selection(spec.id, chosen.profile.mode, evaluations, None, wanted,
                             (f"profile {chosen.profile.id} cannot run here: {'; '.join(chosen.reasons)}",))
        return Selection(spec.id, chosen.profile.mode, evaluations, chosen.profile, wanted)
    compatible = [e.profile for e in evaluations if e.compatible]
    if not compatible:
        reasons = list(dict.fromkeys(r for e in evaluations for r in e.reasons))  # unique, in order
        return Selection(spec.id, mode, evaluations, None, wanted,
                         (f"no profile of {spec.id} can run here: {'; '.join(reasons)} (see: ingot profiles --model {spec.id})",))
    best = min(compatible, key=lambda p: rank_key(p, mode))
    return Selection(spec.id, mode, evaluations, best, wanted)


def choose_profile(spec: ModelSpec, requested: str = "auto", hardware: Hardware | None = None) -> Profile:
    """The profile the server runs for ``spec`` on this machine; ProfileError if none."""
    # Looked up at call time, so a test that replaces ingot.hardware.detect describes the machine.
    return select(spec, hardware or _hardware.detect(), requested=requested).require()
