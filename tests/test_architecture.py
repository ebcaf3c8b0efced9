"""The package's layering: no import cycle, and the data layer never imports the world.

The import graph is read from the source (every ``import``, at any depth, including the
lazy ones inside functions that hide a cycle from the interpreter), so the check needs no
import of the package and costs well under a second.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "landslide"


def module_name(path: Path) -> str:
    """``landslide/data/sampling.py`` -> ``landslide.data.sampling`` (packages by name)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: the package's modules it imports}``; ``from pkg import name`` counts as
    an import of ``pkg.name`` when that is a module, else of ``pkg``."""
    modules = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_is_read_from_the_source() -> None:
    graph = import_graph()
    assert "landslide.band_stats" in graph["landslide.data.datasets"]
    assert "landslide.world.generator" in graph["landslide.world.simulated"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("landslide.data", "landslide.world"),  # the world is injected from config
        ("landslide.world", "landslide.data"),
        ("landslide.layout", "landslide."),  # the shared layout imports nothing of ours
        ("landslide.band_stats", "landslide.data"),
        ("landslide.models", "landslide.data"),
    ],
)
def test_layers_import_only_downwards(layer: str, forbidden: str) -> None:
    graph = import_graph()
    wrong = {
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module == layer or module.startswith(f"{layer}.")
        for target in targets
        if target.startswith(forbidden)
    }
    assert not wrong, sorted(wrong)


def test_the_paper_pool_settings_are_one_fact() -> None:
    """``conf/pool/paper.yaml`` (what runs and prepare.py use) and the values the code falls
    back on for a prepared domain without a saved index agree, key for key."""
    from omegaconf import OmegaConf

    from landslide.data.sampling import PAPER_SAMPLES

    conf = OmegaConf.load(PACKAGE.parent / "conf" / "pool" / "paper.yaml")
    assert OmegaConf.to_container(conf) == PAPER_SAMPLES
    as_prepared = OmegaConf.load(PACKAGE.parent / "conf" / "pool" / "as_prepared.yaml")
    assert OmegaConf.to_container(as_prepared) == dict.fromkeys(PAPER_SAMPLES)
