"""The sdist and wheel build, and the plugin works from a wheel installed in a fresh venv.

Builds and installs (a few seconds); needs a display: ``xvfb-run -a .venv/bin/python -m pytest
tests/test_napari_wheel.py``. The fresh venv
sees the dependencies of the development venv through a ``.pth`` file placed after its own
site-packages, so it needs no network; the package itself comes only from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gui]
if sys.platform.startswith("linux") and not (
    os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
):
    pytest.skip("napari's canvas needs a display: run under xvfb-run -a", allow_module_level=True)
ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import sys
from pathlib import Path
env = Path(sys.argv[1]).resolve()
import napari_adaptiveclick
assert env in Path(napari_adaptiveclick.__file__).resolve().parents, napari_adaptiveclick.__file__
from npe2 import PluginManifest
manifest = PluginManifest.from_distribution("napari-adaptiveclick")
manifest.validate_imports()
from napari_adaptiveclick._napari.sample_data import SAMPLE_DIR
assert env in SAMPLE_DIR.resolve().parents, SAMPLE_DIR
from napari_adaptiveclick.models.registry import MODELS
assert MODELS["tiny"].weights_installed, "the wheel lacks the default weights or their manifest"
import napari
viewer = napari.Viewer(show=False)
viewer.open_sample("napari-adaptiveclick", "em")
viewer.open_sample("napari-adaptiveclick", "mri")
_, widget = viewer.window.add_plugin_dock_widget("napari-adaptiveclick", "AdaptiveClick")
print("layers:", [layer.name for layer in viewer.layers], "widget:", type(widget).__name__)
viewer.close()
"""


def test_wheel_installs_into_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--skip-dependency-check",
            "--outdir",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    printed = build.stdout + build.stderr
    noisy = [
        line
        for line in printed.lower().splitlines()
        if ("license" in line or "classifier" in line) and ("deprecat" in line or "warn" in line)
    ]
    assert not noisy and "BuildBackendWarning" not in printed, "\n".join(noisy)
    [sdist] = dist.glob("*.tar.gz")
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    for packaged in (
        "napari.yaml",
        "sample_data/em_stack.tif",
        "sample_data/mri_volume.nii.gz",
        "sample_data/em_stack_clicks.csv",
        "weights/tiny_default.pt",
        "weights/default.json",
        "models/network/vit.py",
        "interactive/session.py",
    ):
        assert f"napari_adaptiveclick/{packaged}" in names
    with tarfile.open(sdist) as archive:
        assert any(n.endswith("src/napari_adaptiveclick/napari.yaml") for n in archive.getnames())
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(metadata).decode()
    assert (
        "Classifier: Framework :: napari" in text and "Summary: " in text and "Project-URL" in text
    )
    import napari_adaptiveclick

    assert f"Version: {napari_adaptiveclick.__version__}\n" in text  # one source: __init__
    assert "License-Expression: BSD-3-Clause" in text
    requires = [ln for ln in text.splitlines() if ln.startswith("Requires-Dist:")]
    assert any("psygnal" in r for r in requires) and not any("magicgui" in r for r in requires)
    testing = [r for r in requires if 'extra == "testing"' in r]
    bindings = ("pyqt5", "pyqt6", "pyside2", "pyside6")
    assert not [r for r in testing if any(b in r.lower() for b in bindings)], testing
    assert any("napari-adaptiveclick[napari]" in r for r in testing), testing

    env = tmp_path / "env"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "zz_dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [python, "-c", CHECK, str(env)], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "widget: AdaptiveClickWidget" in result.stdout
