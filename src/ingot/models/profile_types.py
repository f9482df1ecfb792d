"""The ``Profile`` data type: one way to run a model (engine x precision x GPUs x target
hardware). Plain data, so the catalog (models/registry.py) can list each model's profiles
and models/profiles.py can choose among them without either importing the other's
module: registry imports this, profiles imports registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EngineName = Literal["llama.cpp", "vllm"]
Mode = Literal["throughput", "latency"]

# Oldest CUDA compute capability with fast kernels for each GPU precision (vLLM's own
# requirements: fp8 needs Ada/Hopper 8.9, nvfp4 needs Blackwell 10.0, bf16 needs Ampere).
MIN_COMPUTE_CAPABILITY: dict[str, tuple[int, int]] = {
    "nvfp4": (10, 0), "fp8": (8, 9), "bf16": (8, 0), "fp16": (7, 0),
}
# Tuned-for GPU tags and the words NVML uses in their names. Matched as whole words so
# "b200" does not match "NVIDIA GB200".
GPU_TAGS: dict[str, str] = {"a100": "A100", "h100": "H100", "h200": "H200", "b200": "B200", "gb200": "GB200"}


@dataclass(frozen=True)
class Profile:
    """One way to run a model. Either a CPU profile (llama.cpp over the spec's GGUF) or a
    GPU profile (vLLM over a Hugging Face checkpoint pulled into the model cache)."""

    engine: EngineName
    precision: str  # llama.cpp: "q8_0", "source"...; vLLM: "bf16", "fp16", "fp8", "nvfp4"
    tensor_parallel: int = 1
    mode: Mode = "throughput"
    gpu: str | None = None  # a GPU_TAGS key this profile was sized for; None: any GPU (generic)
    min_gpu_memory_gib: float = 0.0  # per GPU: weights / tp plus room for the KV cache
    min_memory_gib: float = 0.0  # host RAM
    cpu_features: tuple[str, ...] = ()
    weights: str | None = None  # vLLM: Hugging Face repo id of the checkpoint
    quantization: str | None = None  # vLLM --quantization for online quantization (e.g. "fp8")

    @property
    def id(self) -> str:
        if self.engine == "llama.cpp":
            return f"llamacpp-cpu-{self.precision}"
        parts = ["vllm", *([self.gpu] if self.gpu else []), self.precision, f"tp{self.tensor_parallel}", self.mode]
        return "-".join(parts)

    @property
    def on_gpu(self) -> bool:
        return self.engine != "llama.cpp"

    def describe_target(self) -> str:
        if not self.on_gpu:
            feats = "+".join(f.upper() for f in self.cpu_features)
            return f"CPU{' ' + feats if feats else ''}"
        name = GPU_TAGS.get(self.gpu or "", "any NVIDIA GPU")
        cc = ".".join(map(str, MIN_COMPUTE_CAPABILITY.get(self.precision, (0, 0))))
        return f"{self.tensor_parallel}x {name} >= {self.min_gpu_memory_gib:g} GiB, cc >= {cc}"
