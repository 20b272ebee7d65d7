"""The package's shape (GUIDE.md): one-way layers checked by import-linter, no import
circle, a docstring per package, small files, and a light top-level import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "napari_adaptiveclick"
MAX_LINES = 400


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (the testing extra brings it)")
    result = subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_import_circle_anywhere_in_the_package():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("napari_adaptiveclick")
    circles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if not imported.startswith("napari_adaptiveclick") or imported == module:
                continue
            # A package's __init__ importing its own submodules (and back) is packaging, not
            # a design circle; everything else counts.
            if imported.startswith(module + ".") or module.startswith(imported + "."):
                continue
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                circles.append(" -> ".join([module, *back[1:]]))
    assert not circles, "import circles:\n" + "\n".join(sorted(set(circles)))


def test_every_package_says_what_it_owns_and_may_import():
    missing = []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        if init.parent == PACKAGE or init.parent.parent != PACKAGE:
            continue  # the root and nested packages (models/network) document themselves
        if "May import" not in doc:
            missing.append(str(init.relative_to(REPO)))
    assert not missing, f"packages without a 'May import' line in their docstring: {missing}"


def test_no_source_file_over_the_limit():
    long = [
        f"{path.relative_to(REPO)} ({n} lines)"
        for folder in ("src", "training")
        for path in (REPO / folder).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_importing_the_package_is_light():
    code = (
        "import sys, napari_adaptiveclick; "
        "heavy = [m for m in ('torch', 'napari', 'qtpy', 'timm') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"import napari_adaptiveclick pulled in {result.stdout.strip()}"
