"""core/ is one subpackage per pipeline stage, and imports flow one way: a module imports only
from its own stage or stages below it (the order in core/__init__.py)."""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"
# lowest first; the shared vocabulary (core/*.py) is below every stage, the compositions on top
LAYERS = ["", "provenance", "formats", "audio", "phonetics", "motion", "render", "capture", "train",
          "session", "prerender"]
VOCABULARY = {"types", "errors", "arkit", "deps", "native_quiet", "background", "numeric"}


def stage_of(module: list[str]) -> str:
    """The stage of a module path relative to core/ (['motion', 'lips'] -> 'motion')."""
    head = module[0] if module else ""
    return "" if head in VOCABULARY or head == "" else head


def core_imports(path: Path, root: Path = CORE) -> list[tuple[int, list[str]]]:
    """(line, module path relative to core/) for every import of a core module in a file."""
    package = list(path.relative_to(root).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level - 1 <= len(package) else None
            if base is None:
                continue  # above core/ (npcface.models)
            target = base + (node.module.split(".") if node.module else [])
            if not node.module:
                found += [(node.lineno, target + [alias.name]) for alias in node.names]
            else:
                found.append((node.lineno, target))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.startswith("npcface.core."):
                    found.append((node.lineno, name.split(".")[2:]))
    return found


def test_every_module_sits_in_a_known_stage():
    stray = [p.name for p in CORE.glob("*.py") if p.stem not in VOCABULARY | {"__init__", "session"}]
    assert not stray, f"flat files in core/ outside the shared vocabulary: {stray}"
    packages = sorted(p.name for p in CORE.iterdir() if (p / "__init__.py").exists())
    assert set(packages) <= set(LAYERS), f"a stage missing from LAYERS: {set(packages) - set(LAYERS)}"


def test_imports_flow_one_way():
    wrong = []
    for path in sorted(CORE.rglob("*.py")):
        rel = list(path.relative_to(CORE).with_suffix("").parts)
        own = "session" if rel == ["session"] else stage_of(rel if len(rel) > 1 else [rel[0]])
        for line, target in core_imports(path):
            theirs = "session" if target == ["session"] else stage_of(target)
            if LAYERS.index(theirs) > LAYERS.index(own):
                wrong.append(f"core/{'/'.join(rel)}.py:{line} ({own or 'vocabulary'}) imports "
                             f"{'.'.join(target)} ({theirs})")
    assert not wrong, "imports that flow up the pipeline:\n" + "\n".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path):
    # the check itself can fail: an audio module importing the renderer is caught
    probe = tmp_path / "audio" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("from ..render.renderer import Renderer\nfrom ..types import Audio\n")
    imports = core_imports(probe, root=tmp_path)
    assert imports == [(1, ["render", "renderer"]), (2, ["types"])]
    assert LAYERS.index(stage_of(imports[0][1])) > LAYERS.index(stage_of(["audio", "probe"]))
    assert LAYERS.index(stage_of(imports[1][1])) < LAYERS.index(stage_of(["audio", "probe"]))
