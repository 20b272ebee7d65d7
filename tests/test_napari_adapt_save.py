"""The widget's "Adapt model" box when its checkpoint cannot be written where asked: the
adapted model stays in memory and Save writes it once another file is chosen (run under
xvfb-run -a, like tests/test_napari_adapt.py, whose helpers it uses)."""

from __future__ import annotations

import os
import sys

import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui
if sys.platform.startswith("linux") and not (
    os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
):
    pytest.skip("napari's canvas needs a display: run under xvfb-run -a", allow_module_level=True)

from napari_adaptiveclick._napari import adapt_panel  # noqa: E402
from napari_adaptiveclick.models.checkpoint import read_checkpoint  # noqa: E402
from test_napari_adapt import _finish, _panel, _viewer_with_objects  # noqa: E402


def test_a_failed_save_keeps_the_model_until_saved_elsewhere(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    viewer, *_ = _viewer_with_objects(make_napari_viewer, tmp_path)
    widget, panel = _panel(viewer, qtbot)
    panel.keep_check.setChecked(True)  # one step may not help: this test is about saving
    folder = tmp_path / "models"
    folder.mkdir()
    panel.path_edit.setText(str(folder / "adapted"))  # typed without a suffix
    assert panel._target() == folder / "adapted.pt"
    assert not panel.save_button.isEnabled()  # nothing to save yet

    def then_folder_gone(*args, run=adapt_panel.run_job):
        result = run(*args)  # the real training; then the folder disappears (a drive unplugged)
        folder.rmdir()
        return result

    monkeypatch.setattr(adapt_panel, "run_job", then_folder_gone)
    panel.adapt()
    _finish(qtbot, panel)
    text = panel.message.text()
    assert "Could not save the adapted model" in text and "'Save to' file" in text
    assert "It is kept" in text and "--out" not in text
    assert panel.saved_path is None and panel.result is not None
    assert panel.save_button.isEnabled() and not panel.use_adapted_button.isEnabled()

    panel.adapt()  # a new run would drop the model in memory: it says so first
    assert not panel.running and "not saved: press Save" in panel.message.text()

    other = tmp_path / "elsewhere.pt"
    panel.path_edit.setText(str(other))
    panel.save_button.click()
    _finish(qtbot, panel)
    assert panel.saved_path == other and other.is_file()
    assert read_checkpoint(other)["adaptation"]["steps"] == 1
    assert not panel.save_button.isEnabled()  # saved: nothing more to save
    assert panel.use_adapted_button.isEnabled()


def test_a_typed_folder_is_not_turned_into_a_file_name(tmp_path):
    from napari_adaptiveclick._napari.adapt_inputs import OutputChoice
    from napari_adaptiveclick.learning.adapt_job import check_output

    folder = tmp_path / "models"
    folder.mkdir()
    target = OutputChoice().target(str(folder), None)
    assert target == folder  # refused below, not saved as models.pt beside it
    with pytest.raises(ValueError, match="'Save to' file .* is a folder"):
        check_output(target, None, False, flag="'Save to' file")
    assert OutputChoice().target(str(tmp_path / "new"), None) == tmp_path / "new.pt"
