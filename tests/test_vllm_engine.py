"""The vLLM engine's request and output mapping, and its behaviour around a stand-in vLLM.

No GPU and no vLLM here (vLLM needs CUDA and is an optional extra), so the mapping is
tested as plain data and the engine class runs against ``FakeVllm*`` classes that mimic the
parts of vLLM's API the engine calls (AsyncLLM.generate/abort/shutdown, SamplingParams,
LoRARequest, RequestOutput/CompletionOutput/Logprob). They are fakes: they check what
ingot sends and replay outputs; they do not generate text. Real vLLM runs only where a GPU
machine is available (none was for this work)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ingot.engines.protocol import GenerationRequest, SamplingParams
from ingot.errors import ContextLengthError, InvalidRequestError, QueueFullError
from ingot.engines.protocol import check_budget
from ingot.engines.vllm import mapping
from ingot.engines.vllm.engine import VllmEngine, VllmNotInstalledError, import_vllm
from ingot.models.registry import LLAMA33_70B, SMOLLM2_135M

BF16 = SMOLLM2_135M.profiles[1]


# ---- request mapping ---------------------------------------------------------------------------


def test_sampling_kwargs_map_every_field():
    params = SamplingParams(
        max_tokens=99, temperature=0.2, top_p=0.9, top_k=40, min_p=0.05, seed=7, stop=["\n\n"],
        stop_token_ids=[2], presence_penalty=0.5, frequency_penalty=0.25, repetition_penalty=1.1,
        logit_bias={5: -100.0}, logprobs=3, prompt_logprobs=1, grammar='root ::= "yes" | "no"', ignore_eos=True,
        include_stop_str_in_output=True,
    )
    kw = mapping.sampling_kwargs(params, 50)
    assert kw == {
        "n": 1, "max_tokens": 50, "temperature": 0.2, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 7,
        "presence_penalty": 0.5, "frequency_penalty": 0.25, "repetition_penalty": 1.1, "stop": ["\n\n"],
        "stop_token_ids": [2], "ignore_eos": True, "include_stop_str_in_output": True, "logprobs": 3,
        "prompt_logprobs": 1, "logit_bias": {5: -100.0}, "skip_special_tokens": True, "detokenize": True,
        "structured_outputs": {"grammar": 'root ::= "yes" | "no"'},
    }


def test_sampling_kwargs_defaults_mean_off():
    kw = mapping.sampling_kwargs(SamplingParams(), 16)
    assert kw["top_k"] == -1 and kw["stop"] is None and kw["stop_token_ids"] is None
    assert kw["logit_bias"] is None and kw["logprobs"] is None and "structured_outputs" not in kw
    assert mapping.sampling_kwargs(SamplingParams(max_tokens=0, prompt_logprobs=0), 0)["max_tokens"] == 1


def test_budget_checks_match_the_llamacpp_engine():
    assert check_budget([1, 2, 3], None, 10, 100) == 7
    assert check_budget([1, 2, 3], 7, 10, 100) == 7
    with pytest.raises(ContextLengthError) as too_long:
        check_budget([1, 2, 3], 8, 10, 100)
    assert too_long.value.param == "max_tokens"
    with pytest.raises(ContextLengthError):
        check_budget(list(range(10)), None, 10, 100)
    with pytest.raises(InvalidRequestError, match="outside the vocabulary"):
        check_budget([1, 200], None, 10, 100)
    with pytest.raises(InvalidRequestError, match="empty"):
        check_budget([], None, 10, 100)


def test_engine_args_from_profiles(tmp_path):
    args = mapping.engine_args(BF16, tmp_path, "smollm2-135m-instruct", 8192)
    assert args["dtype"] == "bfloat16" and args["tensor_parallel_size"] == 1 and args["max_model_len"] == 8192
    assert "quantization" not in args and "enable_lora" not in args
    fp8_tp2 = next(p for p in LLAMA33_70B.profiles if p.id == "vllm-h100-fp8-tp2-throughput")
    args = mapping.engine_args(fp8_tp2, tmp_path, "llama", 4096)
    assert args["tensor_parallel_size"] == 2 and args["dtype"] == "auto"  # pre-quantized: read from config.json
    online = mapping.engine_args(BF16.__class__("vllm", "fp8", quantization="fp8"), tmp_path, "m", 10)
    assert online["quantization"] == "fp8"


def test_engine_args_size_lora_rank_to_the_adapters(tmp_path):
    adapters = {}
    for name, rank in (("a", 8), ("b", 100)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text(json.dumps({"r": rank}))
        adapters[name] = tmp_path / name
    args = mapping.engine_args(BF16, tmp_path, "m", 10, adapters)
    assert args["enable_lora"] is True and args["max_loras"] == 2 and args["max_lora_rank"] == 128
    assert mapping.lora_ids(adapters) == {"a": 1, "b": 2}


# ---- output mapping ------------------------------------------------------------------------------


@dataclass
class FakeLogprob:
    logprob: float
    rank: int | None
    decoded_token: str | None


@dataclass
class FakeCompletion:
    text: str
    token_ids: list[int]
    logprobs: list[dict[int, FakeLogprob]] | None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    index: int = 0


@dataclass
class FakeRequestOutput:
    outputs: list[FakeCompletion]
    prompt_logprobs: list[dict[int, FakeLogprob] | None] | None = None
    num_cached_tokens: int = 0
    finished: bool = False


def test_output_mapper_counts_deltas_and_maps_finish():
    m = mapping.OutputMapper("r1", [1, 2, 3], None, None)
    first = m.map(None, FakeCompletion("Hel", [10]), 2)
    last = m.map(None, FakeCompletion("lo", [11, 12], finish_reason="stop", stop_reason="\n"), 2)
    assert (first.text, first.token_ids, first.completion_tokens, first.finish_reason) == ("Hel", [10], 1, None)
    assert first.cached_tokens == 2 and first.prompt_tokens == 3
    assert (last.completion_tokens, last.finish_reason, last.stop_reason) == (3, "stop", "\n")
    assert mapping.OutputMapper("r", [1], None, None).map(None, FakeCompletion("", [], finish_reason="length",
                                                                               stop_reason=5), 0).stop_reason is None
    assert m.map(None, FakeCompletion("", [], finish_reason="error"), 0).finish_reason == "abort"


def test_logprobs_keep_the_chosen_token_and_the_top_k_by_rank():
    row = {7: FakeLogprob(-2.5, 4, " cat"), 3: FakeLogprob(-0.1, 1, " dog"), 9: FakeLogprob(-1.0, 2, " cow")}
    m = mapping.OutputMapper("r", [1, 2], logprobs_k=2, prompt_logprobs_k=None)
    out = m.map(None, FakeCompletion(" cat", [7], [row]), 0)
    (lp,) = out.logprobs
    assert (lp.token_id, lp.token, lp.logprob, lp.bytes) == (7, " cat", -2.5, list(b" cat"))
    assert [t.token_id for t in lp.top] == [3, 9]  # chosen token has rank 4: not in the top 2


def test_prompt_logprobs_only_on_the_first_output():
    prompt_rows = [None, {5: FakeLogprob(-0.3, 1, "b")}, {6: FakeLogprob(-0.7, 2, "c"), 4: FakeLogprob(-0.2, 1, "x")}]
    m = mapping.OutputMapper("r", [4, 5, 6], logprobs_k=None, prompt_logprobs_k=1, echo_only=True)
    first = m.map(prompt_rows, FakeCompletion("z", [99], finish_reason="length"), 0)
    assert first.prompt_logprobs[0] is None
    assert [p.token_id for p in first.prompt_logprobs[1:]] == [5, 6]
    assert [t.token_id for t in first.prompt_logprobs[2].top] == [4]
    # echo-only scoring: vLLM decoded one token, the client sees none
    assert first.token_ids == [] and first.text == "" and first.completion_tokens == 0
    assert first.finish_reason == "length"
    assert m.map(prompt_rows, FakeCompletion("", []), 0).prompt_logprobs is None


# ---- the engine around a fake vLLM -------------------------------------------------------------


class FakeTokenizer:
    bos_token, eos_token = "<s>", "</s>"
    bos_token_id, eos_token_id = 1, 2
    chat_template = "{{ messages }}"

    def __len__(self) -> int:
        return 100

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return ([1] if add_special_tokens else []) + [3 + (ord(c) % 90) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)


@dataclass
class FakeSamplingParams:
    kwargs: dict[str, Any]

    def __init__(self, output_kind: Any = None, **kwargs: Any) -> None:
        if kwargs.get("temperature", 1.0) < 0:
            raise ValueError("temperature must be non-negative")
        self.output_kind = output_kind
        self.kwargs = kwargs


@dataclass
class FakeLoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


@dataclass
class FakeAsyncLLM:
    script: list[FakeRequestOutput]
    calls: list[dict] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    errored: bool = False
    vllm_config: Any = None

    @classmethod
    def from_engine_args(cls, args: Any) -> "FakeAsyncLLM":
        llm = FAKE_LLMS.pop()
        llm.engine_args = args
        return llm

    async def generate(self, prompt: dict, params: Any, request_id: str, *, lora_request: Any = None):
        self.calls.append({"prompt": prompt, "params": params, "request_id": request_id, "lora": lora_request})
        try:
            for out in self.script:
                await asyncio.sleep(0)
                yield out
        finally:
            self.closed.append(request_id)

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    def shutdown(self) -> None:
        self.closed.append("shutdown")


FAKE_LLMS: list[FakeAsyncLLM] = []


def fake_api(**extra: Any) -> Any:
    attrs = {"AsyncLLM": FakeAsyncLLM, "AsyncEngineArgs": lambda **kw: kw, "SamplingParams": FakeSamplingParams,
             "LoRARequest": FakeLoRARequest, "DELTA": "DELTA", "StructuredOutputsParams": lambda **kw: ("SO", kw)}
    attrs.update(extra)
    return type("FakeVllmApi", (), attrs)


def make_engine(tmp_path: Path, script: list[FakeRequestOutput], max_queue: int = 4, slots: int = 2,
                adapters: dict | None = None) -> tuple[VllmEngine, FakeAsyncLLM]:
    scheduler = type("S", (), {"max_num_seqs": slots})
    llm = FakeAsyncLLM(script, vllm_config=type("C", (), {"scheduler_config": scheduler}))
    FAKE_LLMS.append(llm)
    engine = VllmEngine("smollm2-135m-instruct", tmp_path, BF16, context_length=64, max_queue=max_queue,
                        adapters=adapters, api=fake_api(), tokenizer=FakeTokenizer())
    return engine, llm


SCRIPT = [FakeRequestOutput([FakeCompletion("Hi", [40])], num_cached_tokens=1),
          FakeRequestOutput([FakeCompletion(" there", [41, 42], finish_reason="stop", stop_reason=2)])]


async def _collect(engine: VllmEngine, request: GenerationRequest) -> list:
    return [out async for out in engine.generate(request)]


def test_engine_streams_mapped_outputs_with_delta_params(tmp_path):
    engine, llm = make_engine(tmp_path, SCRIPT)
    request = GenerationRequest("req-1", [1, 5, 6], SamplingParams(max_tokens=10, temperature=0, grammar="g"))
    outs = asyncio.run(_collect(engine, request))
    assert [o.text for o in outs] == ["Hi", " there"] and outs[-1].completion_tokens == 3
    assert outs[-1].finish_reason == "stop" and outs[0].cached_tokens == 1
    (call,) = llm.calls
    assert call["prompt"] == {"prompt_token_ids": [1, 5, 6]} and call["request_id"] == "req-1"
    assert call["params"].output_kind == "DELTA" and call["params"].kwargs["max_tokens"] == 10
    assert call["params"].kwargs["structured_outputs"] == ("SO", {"grammar": "g"})
    assert call["lora"] is None and llm.closed == ["req-1"]
    assert engine.info.engine == "vllm" and engine.info.precision == "bf16" and engine.info.vocab_size == 100
    assert engine.stats() == {"running": 0, "waiting": 0, "slots": 2, "max_queue": 4}
    assert llm.engine_args["model"] == str(tmp_path) and llm.engine_args["served_model_name"] == "smollm2-135m-instruct"


def test_engine_selects_lora_by_model_name(tmp_path):
    adapter = tmp_path / "sql"
    adapter.mkdir()
    engine, llm = make_engine(tmp_path, SCRIPT, adapters={"sql-lora": adapter})
    assert engine.adapter_names() == ("sql-lora",)
    asyncio.run(_collect(engine, GenerationRequest("a", [1, 5], SamplingParams(max_tokens=4), model="sql-lora")))
    asyncio.run(_collect(engine, GenerationRequest("b", [1, 5], SamplingParams(max_tokens=4),
                                                   model="smollm2-135m-instruct")))
    assert llm.calls[0]["lora"] == FakeLoRARequest("sql-lora", 1, str(adapter))
    assert llm.calls[1]["lora"] is None
    assert llm.engine_args["enable_lora"] is True


def test_engine_closes_vllm_stream_when_client_leaves(tmp_path):
    long_script = [FakeRequestOutput([FakeCompletion("x", [40])]) for _ in range(50)]
    engine, llm = make_engine(tmp_path, long_script)

    async def leave_early() -> dict:
        gen = engine.generate(GenerationRequest("gone", [1, 5], SamplingParams(max_tokens=60)))
        await gen.__anext__()
        during = engine.stats()
        await gen.aclose()
        return during

    during = asyncio.run(leave_early())
    assert during["running"] == 1
    assert llm.closed == ["gone"] and engine.stats()["running"] == 0


def test_engine_bounds_the_queue(tmp_path):
    engine, _ = make_engine(tmp_path, SCRIPT * 20, max_queue=1, slots=1)

    async def flood() -> list:
        gens = [engine.generate(GenerationRequest(f"r{i}", [1, 5], SamplingParams(max_tokens=30))) for i in range(3)]
        await gens[0].__anext__()
        await gens[1].__anext__()
        with pytest.raises(QueueFullError):
            await gens[2].__anext__()
        stats = engine.stats()
        for g in gens[:2]:
            await g.aclose()
        return [stats]

    (stats,) = asyncio.run(flood())
    assert stats == {"running": 1, "waiting": 1, "slots": 1, "max_queue": 1}


def test_engine_reports_bad_params_and_context(tmp_path):
    engine, llm = make_engine(tmp_path, SCRIPT)
    with pytest.raises(InvalidRequestError, match="temperature"):
        asyncio.run(_collect(engine, GenerationRequest("t", [1], SamplingParams(temperature=-1))))
    with pytest.raises(ContextLengthError):
        asyncio.run(_collect(engine, GenerationRequest("c", [1] * 60, SamplingParams(max_tokens=10))))
    assert llm.calls == []
    assert engine.tokenize("ab") == [1, 3 + ord("a") % 90, 3 + ord("b") % 90]
    assert engine.document_start_token() == 1
    llm.errored = True
    with pytest.raises(RuntimeError, match="engine core died"):
        engine.check_health()


def test_vllm_missing_is_a_clear_error():
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - a GPU environment
        pytest.skip("vLLM is installed here")
    with pytest.raises(VllmNotInstalledError, match=r"pip install 'ingot\[vllm\]'"):
        import_vllm()


def test_factory_routes_a_gpu_profile_to_vllm(monkeypatch, tmp_path):
    """On a (simulated) H100 with vLLM reported installed, create_engine goes to the vLLM
    engine; here vLLM cannot import, so it stops with the install hint, not llama.cpp."""
    from ingot.config import load_settings
    from ingot.engines import factory
    from ingot.hardware import GIB, CpuInfo, GpuInfo, Hardware
    from ingot.models import profiles

    h100 = Hardware(cpu=CpuInfo("x", 8, 64 * GIB, frozenset({"avx2"})),
                    gpus=(GpuInfo(0, "NVIDIA H100 80GB HBM3", 80 * GIB, (9, 0)),))
    monkeypatch.setattr("ingot.hardware.detect", lambda: h100)
    monkeypatch.setattr(profiles, "installed_engines", lambda: frozenset({"llama.cpp", "vllm"}))
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here")  # pragma: no cover
    except ImportError:
        pass
    settings = load_settings(data_dir=tmp_path)
    with pytest.raises(VllmNotInstalledError):
        factory.create_engine(SMOLLM2_135M, settings)
