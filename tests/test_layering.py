"""Dependency direction: core <- calibration <- matching | triangulation <- fusion <- capture."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ALLOWED = {
    "core": set(),
    "calibration": {"core"},
    "matching": {"core", "calibration"},
    "triangulation": {"core", "calibration"},
    "fusion": {"core", "calibration"},
    "capture": {"core", "calibration", "matching", "triangulation", "fusion"},
}
THIRD_PARTY_ONLY_IN = {
    "zmq": {"capture"},
    "torch": {"capture"},
    "onnxruntime": {"capture"},
    "cv2": {"calibration", "capture"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_point_one_way(package):
    files = list((REPO / package).rglob("*.py"))
    assert files, f"package {package} is empty"
    for f in files:
        mods = _imports(f)
        forbidden = (mods & set(ALLOWED)) - ALLOWED[package] - {package}
        assert not forbidden, f"{f.relative_to(REPO)} imports {sorted(forbidden)}"
        for lib, where in THIRD_PARTY_ONLY_IN.items():
            assert lib not in mods or package in where, f"{f.relative_to(REPO)} imports {lib}"


def _modules(path: Path) -> set[str]:
    """Every absolute module a file imports, including imports inside functions."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


@pytest.mark.parametrize("sub", ["detect", "sources", "outputs"])
def test_capture_stages_do_not_import_the_service(sub):
    """Within capture/, the service wires detect/, sources/ and outputs/; they never reach back into it."""
    files = list((REPO / "capture" / sub).rglob("*.py"))
    assert files, f"capture/{sub} is empty"
    for f in files:
        up = {m for m in _modules(f) if m == "capture.service" or m.startswith("capture.service.")}
        assert not up, f"{f.relative_to(REPO)} imports {sorted(up)}"
