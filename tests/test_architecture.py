"""The package's architecture rules, checked on its source: layers (import-linter) and private names."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workbench"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imported_names(path: Path) -> list[tuple[int, str]]:
    """Every dotted name a module imports (``from a.b import c`` gives ``a.b.c``), with its line."""
    module, is_package = _module_name(path), path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, is_package, node)
            found += [(node.lineno, f"{source}.{alias.name}") for alias in node.names]
    return found


def private_imports_across_packages(package: Path = PACKAGE) -> list[str]:
    """``file:line name`` for each import of a private name (``_x``) from outside the package that owns it.

    A private name may be used anywhere inside the package that contains it: ``workbench._io`` by every
    subpackage, ``workbench.models._estimators`` and a ``_name`` of ``workbench.models.cv`` only
    inside ``workbench.models``.
    """
    problems = []
    for path in sorted(package.rglob("*.py")):
        importer = _module_name(path)
        for line, name in _imported_names(path):
            parts = name.split(".")
            if parts[0] != "workbench":
                continue
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    holder = package.parent.joinpath(*parts[:i])
                    # a private module belongs to its package; a private name to its module's package
                    owner = ".".join(parts[:i] if (holder / "__init__.py").is_file() else parts[: i - 1])
                    if not (importer == owner or importer.startswith(owner + ".")):
                        problems.append(f"{path.relative_to(ROOT)}:{line} {name}")
                    break
    return problems


def test_no_private_import_across_packages() -> None:
    assert private_imports_across_packages() == []


def test_the_private_import_check_catches_one(tmp_path: Path) -> None:
    pkg = tmp_path / "workbench"
    (pkg / "models").mkdir(parents=True)
    (pkg / "features").mkdir()
    for init in (pkg / "__init__.py", pkg / "models/__init__.py", pkg / "features/__init__.py"):
        init.write_text("")
    (pkg / "models/_cv.py").write_text("def _check(): pass\n")
    (pkg / "models/cv.py").write_text("from ._cv import _check\n")  # inside its package: fine
    (pkg / "features/enc.py").write_text("from ..models._cv import _check\nfrom workbench.models.cv import _x\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = private_imports_across_packages(pkg)
    finally:
        ROOT = saved
    assert found == [
        "workbench/features/enc.py:1 workbench.models._cv._check",
        "workbench/features/enc.py:2 workbench.models.cv._x",
    ]


def test_layers_are_kept() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("lint-imports (import-linter) is not installed")
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
