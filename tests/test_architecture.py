"""The package's one-way layering (GUIDE.md) and a light top-level import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_adaptiveclick"

# Lowest first: a module may import only its own layer and the layers before it.
LAYERS = [
    {"config", "clicks", "transforms", "io", "simulator", "slicing", "edits"},
    {"model"},
    {"registry", "weights"},
    {"session", "volume", "annotator", "predictor", "propagation", "replay", "baseline"},
    {"evaluation"},
    {"_napari", "__main__"},
]
GUI_MODULES = ("napari", "qtpy", "magicgui", "vispy", "superqt")


def _layer(name: str) -> int:
    for index, names in enumerate(LAYERS):
        if name in names:
            return index
    raise AssertionError(f"module {name!r} is in no layer of tests/test_architecture.py: add it")


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import in ``path``."""
    tree = ast.parse(path.read_text())
    package = ["napari_adaptiveclick", *path.relative_to(PACKAGE).parent.parts]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, node.lineno))
    return found


def _top(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0].removesuffix(".py")


def test_layers_only_import_to_their_left():
    problems = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        own = _layer(_top(path))
        for module, line in _imports(path):
            parts = module.split(".")
            if parts[0] == "training":
                problems.append(f"{path.name}:{line} imports training (the package never does)")
            if parts[0] in GUI_MODULES and _top(path) != "_napari":
                problems.append(f"{path.name}:{line} imports {parts[0]} outside _napari/")
            if parts[0] == "napari_adaptiveclick" and len(parts) > 1 and _layer(parts[1]) > own:
                problems.append(
                    f"{path.relative_to(PACKAGE)}:{line} imports {module} from a higher layer"
                )
    assert not problems, "\n".join(problems)


def test_importing_the_package_is_light():
    code = (
        "import sys, napari_adaptiveclick; "
        "heavy = [m for m in ('torch', 'napari', 'qtpy', 'timm') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"import napari_adaptiveclick pulled in {result.stdout.strip()}"
