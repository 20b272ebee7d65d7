"""Disk maps against hand values; click-record files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_adaptiveclick.interactive.prompts import Click, disk_maps
from napari_adaptiveclick.volume.records import ClickRecord, read_click_records, write_click_records


def test_disk_of_radius_one_is_a_plus_sign():
    maps = disk_maps([Click(2, 2, True)], (5, 5), radius=1.0)
    expected = np.array(
        [[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]],
        dtype=np.float32,
    )
    assert np.array_equal(maps[0], expected)
    assert not maps[1].any()


def test_disk_radius_five_area_and_boundary():
    maps = disk_maps([Click(20, 20, False)], (41, 41), radius=5.0)
    assert maps[0].sum() == 0
    # Lattice points with dx^2 + dy^2 <= 25: 81 (Gauss circle problem, r = 5).
    assert maps[1].sum() == 81
    assert maps[1][15, 20] == 1 and maps[1][20, 25] == 1 and maps[1][16, 17] == 1  # 16+9 = 25
    assert maps[1][15, 19] == 0  # 25 + 1 > 25


def test_disks_are_clipped_at_the_border_and_merge():
    maps = disk_maps(
        [Click(0, 0, True), Click(0, 1, True), Click(9, 9, False)], (10, 10), radius=2.0
    )
    assert maps[0][0, 0] == 1 and maps[0][2, 0] == 1 and maps[0][3, 0] == 0
    assert maps[0].max() == 1.0  # overlapping disks stay binary
    assert maps[1][9, 9] == 1 and maps[1][7, 9] == 1


def test_subpixel_click_position():
    maps = disk_maps([Click(2.5, 2.5, True)], (6, 6), radius=0.75)
    assert maps[0][2:4, 2:4].sum() == 4 and maps[0].sum() == 4


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_records_round_trip(tmp_path, suffix):
    records = [
        ClickRecord(
            plane=3, row=10.5, col=20.0, positive=True, object_id=1, order=0, model="tiny", axis=0
        ),
        ClickRecord(
            plane=3, row=12.0, col=25.0, positive=False, object_id=1, order=1, model="tiny", axis=0
        ),
        ClickRecord(
            plane=4, row=1.0, col=2.0, positive=True, object_id=2, order=2, model="tiny", axis=2
        ),
    ]
    path = tmp_path / f"clicks{suffix}"
    write_click_records(path, records)
    assert read_click_records(path) == records


def test_minimal_csv_and_sorting(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("plane,row,col,positive,object_id,order\n0,5,6,false,1,2\n0,1,2,1,1,1\n")
    records = read_click_records(path)
    assert [r.order for r in records] == [1, 2]
    assert records[0].positive and not records[1].positive
    assert records[0].click == Click(1.0, 2.0, True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plane,row,col,positive\n0,1,2,1\n", "lacks object_id"),
        ("plane,row,col,positive,object_id\n0,1,2,maybe,1\n", "'positive' must be"),
        ("plane,row,col,positive,object_id\n0,x,2,1,1\n", "not valid"),
    ],
)
def test_bad_click_files_are_explained(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_click_records(path)


def test_missing_click_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="Click file not found"):
        read_click_records(tmp_path / "none.csv")


def test_csv_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_bytes(b"\xef\xbb\xbfplane,row,col,positive,object_id\n2,10.5,20,false,3\n")
    [record] = read_click_records(path)
    assert (record.plane, record.row, record.col, record.positive, record.object_id) == (
        2,
        10.5,
        20.0,
        False,
        3,
    )


@pytest.mark.parametrize("field", ["plane", "object_id", "axis", "order"])
def test_fractional_ids_are_refused_not_truncated(tmp_path, field):
    row = {"plane": 1, "row": 3, "col": 4, "positive": "true", "object_id": 2, field: 2.5}
    path = tmp_path / "clicks.json"
    path.write_text(json.dumps([row]))
    with pytest.raises(ValueError, match=f"{field} must be a whole number"):
        read_click_records(path)
    row[field] = 2.0  # a whole number written as a float is fine
    path.write_text(json.dumps([row]))
    assert getattr(read_click_records(path)[0], field) == 2
