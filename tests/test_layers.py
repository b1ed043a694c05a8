"""The house: imports follow the pipeline's layers, nothing imports in a cycle, light commands stay light."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "masquerade"

# Each stage imports only from lower ranks; packages of one rank are siblings and never import each other.
RANKS = {
    "core": 0,
    "media": 1,
    "faces": 2,
    "faceset": 3,
    "provenance": 3,
    "models": 4,
    "train": 5,
    "swap": 5,
    "evaluate": 6,
    "demo": 7,
    "ui": 7,
    "cli": 8,
    "__main__": 9,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every masquerade module and the masquerade modules it imports (at the top or inside functions)."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("masquerade")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("masquerade"):
                subs = {f"{node.module}.{a.name}" for a in node.names} & paths.keys()  # `from pkg import module`
                deps |= subs if len(subs) == len(node.names) else {node.module, *subs}
        graph[name] = {d for d in deps if d in paths and d != name}
    return graph


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_import_points_to_a_lower_layer_or_the_same_stage():
    wrong = []
    for mod, deps in _imports().items():
        src = _stage(mod)
        if src is None:
            continue
        for dep in deps:
            dst = _stage(dep)
            if dst is None or dst == src:
                continue
            if RANKS[dst] >= RANKS[src]:
                wrong.append(f"{mod} -> {dep}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_every_stage_has_a_rank():
    stages = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if not p.name.startswith("_")}
    stages = {s for s in stages if (PACKAGE / s).is_dir() or (PACKAGE / f"{s}.py").is_file()} - {"__pycache__"}
    assert stages <= set(RANKS), stages - set(RANKS)


def test_no_import_cycles():
    graph = _imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(dep) :], dep]))
            if dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for mod in graph:
        if mod not in state:
            visit(mod, [mod])


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_verify_help_and_verify_itself_do_not_import_torch():
    mods = _modules_after(
        "import contextlib, io\n"
        "from masquerade.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['verify', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "main(['verify', '/nonexistent.mp4'])"
    )
    assert "masquerade.provenance.verify" in mods  # the command did run
    assert "torch" not in mods


def test_loading_a_model_for_swapping_does_not_import_the_trainer():
    mods = _modules_after("import masquerade.swap.pipeline, masquerade.swap.run, masquerade.models.io")
    assert not [m for m in mods if m.startswith("masquerade.train")]
    assert not [m for m in mods if m.startswith("masquerade.evaluate")]


def test_the_face_set_is_torch_free():
    assert "torch" not in _modules_after("import masquerade.faceset.store, masquerade.faceset.extract")
