"""The package's import structure, read statically from the source (every ``import`` in a
module, function-level ones included): no import cycle between modules, and no module
imports from a layer above its own. docs/architecture.md shows the same layers.

A cycle or an upward import fails with the offending modules named, so the fix is where
the message points.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

# Lowest first. A module may import its own layer and the layers below, never above.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"ingot", "ingot.errors", "ingot.config", "ingot.checksums", "ingot.logging_setup",
                    "ingot.tracing", "ingot.metrics", "ingot.hardware", "ingot.wire", "ingot.batching", "ingot.cpu_demand",
                    "ingot.security", "ingot.state"}),
    ("models", {"ingot.models"}),
    ("runtimes and stores", {"ingot.engines", "ingot.embeddings", "ingot.ranking", "ingot.store", "ingot.ingest"}),
    ("services", {"ingot.generation", "ingot.retrieval", "ingot.kb", "ingot.rag", "ingot.eval"}),
    ("bootstrap", {"ingot.bootstrap"}),
    ("entry points", {"ingot.server", "ingot.cli"}),
]
# The CLI renders in-process answers exactly as the server does, through the wire adapters;
# it never reaches into the server's routes, app or state.
CLI_MAY_USE_FROM_SERVER = ("ingot.server.openai",)


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "ingot").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {_resolve(a.name) for a in node.names if a.name.startswith("ingot")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("ingot"):
                continue
            for alias in node.names:  # ``from ingot.cli import chat`` imports the submodule
                full = f"{target}.{alias.name}"
                found.add(full if full in MODULES else _resolve(target))
    found.discard(module)
    found.discard("")
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _layer(module: str) -> int:
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return out


def test_the_walker_sees_known_imports():
    """Guards the test itself: a walker that found nothing would pass every rule."""
    assert "ingot.generation.events" in GRAPH["ingot.generation.service"]
    assert "ingot.bootstrap" in GRAPH["ingot.server.app"]
    assert "ingot.cli.chat" in GRAPH["ingot.cli"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_every_module_is_in_a_layer():
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("name,_", LAYERS)
def test_no_module_imports_from_a_layer_above(name, _):
    wrong = []
    for module, targets in GRAPH.items():
        if LAYERS[_layer(module)][0] != name:
            continue
        for target in targets:
            if _layer(target) > _layer(module):
                wrong.append(f"{module} -> {target} ({LAYERS[_layer(target)][0]})")
    assert not wrong, f"{name} imports from above: " + ", ".join(sorted(wrong))


def test_cli_uses_the_server_only_through_its_wire_adapters_and_app():
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items() if module.startswith("ingot.cli")
        for target in targets
        if target.startswith("ingot.server") and not target.startswith(CLI_MAY_USE_FROM_SERVER)
        and not (module == "ingot.cli.serve" and target == "ingot.server.app")
        and not (module == "ingot.cli.worker" and target == "ingot.server.worker")
    )
    assert not wrong, "the CLI reaches into the server: " + ", ".join(wrong)


def test_services_never_frame_a_wire_format():
    """SSE framing and OpenAI's JSON shapes live only in server/: the services emit typed
    events, so a new API is a new adapter, not a new parser of another's output."""
    wrong = []
    for module, path in MODULES.items():
        if module.startswith(("ingot.server", "ingot.cli")):
            continue
        text = path.read_text()
        if '"data: ' in text or "'data: " in text or "text/event-stream" in text:
            wrong.append(module)
    assert not wrong, "SSE outside server/: " + ", ".join(wrong)
