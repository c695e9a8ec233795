"""Dependencies point one way: cache → tools, sandboxes → envs → agents → rollouts → training → adapters → cli,
with bench on top. Every import counts, the lazy ones inside functions too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {".venv", "tests", "build", "runs", "embedded", ".git"}

LAYERS: list[tuple[str, ...]] = [
    ("horizongym.cache", "horizongym.failures"),
    ("horizongym.tools",),
    ("horizongym.sandboxes",),
    ("horizongym.envs", "horizongym"),
    ("horizongym.agents",),
    ("horizongym.training.rollouts",),
    ("horizongym.training",),
    ("horizongym.adapters",),
    ("horizongym.view",),
    ("horizongym.cli", "horizongym.__main__"),
    ("horizongym.bench",),
]
"""Layers from the bottom; a module may import its own layer and the ones before it. ``tools`` and
``sandboxes`` stand side by side: each is listed as its own layer, so ``tools`` must not import
``sandboxes``; the reverse is checked separately. The package itself (``import horizongym``) counts
as the envs layer, which it loads; its own lazy re-exports from every layer are its job (the front
door), so its ``__init__`` is not checked."""
FRONT_DOOR = "horizongym"
SIDE_BY_SIDE = {("horizongym.sandboxes", "horizongym.tools")}


def layer_of(module: str) -> int:
    """The index of the most specific layer that holds ``module``."""
    best, best_len = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def layer_name(index: int) -> str:
    return LAYERS[index][0]


def module_name(path: Path, root: Path) -> str:
    parts = ["horizongym", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> Iterator[tuple[str, int]]:
    """Every horizongym module ``path`` imports (at the top or inside a function), with its line."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # ``from pkg import sub`` imports the sub-module when it is one, else names of ``pkg``
            submodules = [f"{origin}.{a.name}" for a in node.names if _is_module(f"{origin}.{a.name}", root)]
            targets = submodules or [origin]
        else:
            continue
        for target in targets:
            if target == "horizongym" or target.startswith("horizongym."):
                yield target, node.lineno


def _is_module(name: str, root: Path) -> bool:
    relative = Path(*name.split(".")[1:])
    return (root / relative).is_dir() or (root / relative).with_suffix(".py").is_file()


def violations(root: Path) -> list[str]:
    """``file:line: A (layer) imports B (a higher layer)`` for every edge against the order."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if SKIPPED & set(path.relative_to(root).parts):
            continue
        source = module_name(path, root)
        if source == FRONT_DOOR:
            continue
        here = layer_of(source)
        for target, line in imports(path, root):
            there = layer_of(target)
            upward = there > here
            sideways = (layer_name(here), layer_name(there)) in SIDE_BY_SIDE
            if upward or sideways:
                where = path.relative_to(root)
                found.append(f"{where}:{line}: {source} ({layer_name(here)}) imports {target} ({layer_name(there)})")
    return found


def test_no_module_imports_a_higher_layer() -> None:
    assert violations(ROOT) == []


def test_the_check_sees_lazy_imports_inside_functions(tmp_path: Path) -> None:
    """The old ``envs/workspace.py`` measured contexts by running the engine from inside a function."""
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "__init__.py").write_text("")
    (tmp_path / "envs" / "workspace.py").write_text(
        "def context_tokens():\n"
        "    from horizongym.agents.hf import encode_prompt\n"
        "    from horizongym.training.rollouts.engine import RolloutEngine\n"
    )
    (tmp_path / "sandboxes").mkdir()
    (tmp_path / "sandboxes" / "x.py").write_text("from ..tools import parser\n")
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "parser.py").write_text("")
    found = violations(tmp_path)
    assert len(found) == 3, found
    assert "envs/workspace.py:2" in found[0] and "(horizongym.agents)" in found[0]
    assert "(horizongym.training.rollouts)" in found[1]
    assert "sandboxes/x.py:1" in found[2]


def test_every_top_level_folder_is_a_layer() -> None:
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    named = {prefix.split(".")[1] for prefixes in LAYERS for prefix in prefixes if prefix.count(".") >= 1}
    assert folders <= named, folders - named
