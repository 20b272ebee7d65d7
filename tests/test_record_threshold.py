"""The mask threshold in the click records: every record keeps the threshold its mask was
written at, the clicks file carries it (older files without it still load), and a replay
predicts each record at its own threshold, whatever threshold the replay is given.

The model is a randomly initialised ``tiny``: its probabilities are meaningless, but they are
spread enough that 0.3 and 0.7 give other masks (asserted), so the replay assertions can fail.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from napari_adaptiveclick.volume import PropagationSettings, VolumeAnnotator, replay_records
from napari_adaptiveclick.volume.clicks_file import read_click_records, write_click_records
from napari_adaptiveclick.volume.records import ClickRecord, record_dict, with_threshold
from synthetic import disk_volume


@pytest.fixture(scope="module")
def session(random_tiny_session):
    return random_tiny_session


def _annotate(session, image, labels):
    """Object 1 on plane 1 at threshold 0.3, object 2 on plane 2 at 0.7."""
    annotator = VolumeAnnotator(image, labels, session)
    annotator.threshold = 0.3
    annotator.add_click(1, 20, 20)
    annotator.commit()
    annotator.threshold = 0.7
    annotator.add_click(2, 12, 30)
    annotator.add_click(2, 25, 10, positive=False)
    return annotator


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_a_replay_uses_each_records_threshold_from_the_file(session, tmp_path, suffix):
    image = disk_volume(3, 40)
    labels = np.zeros((3, 40, 40), np.int32)
    session.threshold = 0.49
    annotator = _annotate(session, image, labels)
    assert [r.threshold for r in annotator.records] == [0.3, 0.7, 0.7]
    path = tmp_path / f"clicks{suffix}"
    write_click_records(path, annotator.records)
    records = read_click_records(path)
    assert records == annotator.records

    session.threshold = 0.49  # the replay's own threshold (segment --threshold) differs
    np.testing.assert_array_equal(replay_records(image, records, session), labels)
    assert session.threshold == 0.49  # given back after the replay

    # the threshold decides here: without it the same clicks give other labels
    unrecorded = [replace(r, threshold=None) for r in records]
    assert not np.array_equal(replay_records(image, unrecorded, session), labels)


def test_a_changed_threshold_on_the_last_click_updates_its_record(session):
    image = disk_volume(3, 40)
    labels = np.zeros((3, 40, 40), np.int32)
    session.threshold = 0.49
    annotator = VolumeAnnotator(image, labels, session)
    record = annotator.add_click(1, 20, 20).record
    assert record.threshold == 0.49
    probability = session.probability  # the plane's, of the last click
    assert ((probability > 0.3) != (probability > 0.49)).any()  # so the replay can differ
    annotator.threshold = 0.3  # the widget re-applies it to the click's probability
    new = annotator.rewrite_click(record, probability > 0.3)
    assert new is not None and new.threshold == 0.3 and annotator.records == [new]
    assert annotator.rewrite_click(record, probability > 0.3) is None  # a stale record
    np.testing.assert_array_equal(labels[1] == 1, probability > 0.3)

    session.threshold = 0.49
    np.testing.assert_array_equal(replay_records(image, annotator.records, session), labels)


def test_files_without_a_threshold_load_and_bad_thresholds_are_refused(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("plane,row,col,positive,object_id\n0,5,5,1,1\n")
    [record] = read_click_records(old)
    assert record.threshold is None
    semicolons = tmp_path / "locale.csv"  # a spreadsheet that writes decimal commas
    semicolons.write_text("plane;row;col;positive;object_id;threshold\n0;5,5;5;1;1;0,3\n")
    assert read_click_records(semicolons)[0].threshold == pytest.approx(0.3)
    for bad in ("1.5", "0", "abc", "nan"):
        path = tmp_path / "bad.csv"
        path.write_text(f"plane,row,col,positive,object_id,threshold\n0,5,5,1,1,{bad}\n")
        with pytest.raises(ValueError, match=r"click 1 \(line 2\) is not valid: threshold must"):
            read_click_records(path)
    with pytest.raises(ValueError, match="threshold must be a number in"):
        ClickRecord(0, 5, 5, True, 1, threshold=True)  # type: ignore[arg-type]


def test_a_threshold_set_during_a_replay_holds_after_it(session):
    """The widget sets the threshold on the Qt thread while a replay runs on its worker: the
    replay's records keep their own thresholds, and the new one holds once it ends."""
    image = disk_volume(3, 40)
    session.threshold = 0.49
    made = _annotate(session, image, np.zeros((3, 40, 40), np.int32)).records
    annotator = VolumeAnnotator(image, np.zeros((3, 40, 40), np.int32), session)
    replaying = annotator.replay(made)
    next(replaying)
    annotator.threshold = 0.6  # during the replay
    assert session.threshold == 0.6  # between records: the user's; each record sets its own
    for _ in replaying:
        pass
    assert annotator.threshold == session.threshold == 0.6
    assert [r.threshold for r in annotator.records] == [0.3, 0.7, 0.7]
    assert annotator.add_click(0, 20, 20).record.threshold == 0.6


def test_a_replay_stopped_early_leaves_the_users_threshold(session):
    """A viewer stops a replay by no longer asking for records (the generator is not
    closed at once): between records the session is back at the user's threshold."""
    image = disk_volume(3, 40)
    session.threshold = 0.49
    made = _annotate(session, image, np.zeros((3, 40, 40), np.int32)).records
    session.threshold = 0.49
    annotator = VolumeAnnotator(image, np.zeros((3, 40, 40), np.int32), session)
    replaying = annotator.replay(made)
    next(replaying)  # then abandoned, not closed
    assert session.threshold == 0.49
    annotator.threshold = 0.6
    assert session.threshold == 0.6
    assert annotator.add_click(0, 20, 20).record.threshold == 0.6
    for bad in (1.5, 0.0, float("nan")):  # refused, and the threshold stays as it was
        with pytest.raises(ValueError, match="threshold must be a number in"):
            annotator.threshold = bad
    assert annotator.threshold == session.threshold == 0.6
    replaying.close()
    assert session.threshold == 0.6


def test_a_rethresholded_first_click_on_a_large_plane_replays_the_same(session):
    """The first click's window grows while its mask touches the window's edge; that test
    cuts at the fixed 0.49, so the probability, and the replay, do not depend on the
    user's threshold."""
    image = disk_volume(1, 700)  # larger than the 256 px first-click window
    labels = np.zeros((1, 700, 700), np.int32)
    session.threshold = 0.5
    annotator = VolumeAnnotator(image, labels, session)
    record = annotator.add_click(0, 350, 350).record
    probability = session.probability
    annotator.threshold = 0.05
    assert annotator.rewrite_click(record, probability > 0.05) is not None
    session.threshold = 0.49
    np.testing.assert_array_equal(replay_records(image, annotator.records, session), labels)


def test_propagated_slices_record_the_threshold_and_replay_the_same(session):
    image = disk_volume(5, 40)
    labels = np.zeros((5, 40, 40), np.int32)
    session.threshold = 0.49
    annotator = VolumeAnnotator(image, labels, session)
    annotator.threshold = 0.3
    annotator.add_click(2, 20, 20)
    lenient = PropagationSettings(min_area_ratio=0.0, max_area_ratio=np.inf, min_iou=0.0)
    annotator.propagate(2, lenient)
    assert len(annotator.records) > 1, "nothing was propagated: the test tests nothing"
    assert {r.threshold for r in annotator.records} == {0.3}
    session.threshold = 0.49
    np.testing.assert_array_equal(replay_records(image, annotator.records, session), labels)


def test_records_stored_before_the_field_take_the_stored_sessions_threshold(tmp_path):
    old = [ClickRecord(0, 5, 5, True, 1), ClickRecord(0, 6, 6, True, 1, order=1, threshold=0.7)]
    assert [r.threshold for r in with_threshold(old, 0.3)] == [0.3, 0.7]
    assert with_threshold(old, None) == old
    items = [{k: v for k, v in record_dict(r).items() if k != "threshold"} for r in old[:1]]
    path = tmp_path / "metadata.json"  # the layer metadata's layout: a file keeps no guess
    path.write_text(json.dumps({"records": items, "threshold": 0.25}))
    assert read_click_records(path)[0].threshold is None  # replayed at the replay's own
    for bad in ('"abc"', "true", "1.5", "[0.3]"):
        path.write_text(
            f'[{{"plane": 0, "row": 1, "col": 1, "positive": 1, "object_id": 1, '
            f'"threshold": {bad}}}]'
        )
        with pytest.raises(ValueError, match="click 1 is not valid: threshold must"):
            read_click_records(path)


def test_layer_metadata_from_before_the_field_gives_its_records_the_sessions_threshold():
    pytest.importorskip("napari")
    from types import SimpleNamespace

    from napari_adaptiveclick._napari.layers import METADATA_KEY, stored_records

    item = {k: v for k, v in record_dict(ClickRecord(0, 5, 5, True, 1)).items() if k != "threshold"}
    labels = SimpleNamespace(metadata={METADATA_KEY: {"records": [item], "threshold": 0.35}})
    assert [r.threshold for r in stored_records(labels)] == [0.35]
