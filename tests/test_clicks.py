"""Disk maps against hand values; click-record files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_adaptiveclick.interactive.prompts import Click, disk_maps
from napari_adaptiveclick.volume.clicks_file import read_click_records, write_click_records
from napari_adaptiveclick.volume.records import ClickRecord


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


@pytest.mark.parametrize(
    ("value", "positive"),
    [
        *[(text, False) for text in ("false", "False", "FALSE", "0", "no", "No", " false ")],
        *[(text, True) for text in ("true", "True", "TRUE", "1", "yes", "Yes")],
    ],
)
def test_positive_written_as_text_in_csv(tmp_path, value, positive):
    path = tmp_path / "clicks.csv"
    path.write_text(f'plane,row,col,positive,object_id\n0,1,2,"{value}",1\n')
    assert read_click_records(path)[0].positive is positive


@pytest.mark.parametrize(
    ("value", "positive"),
    [
        (True, True),
        (False, False),
        ("false", False),
        ("True", True),
        (1, True),
        (0, False),
        (1.0, True),
        (0.0, False),
    ],
)
def test_positive_in_json_booleans_strings_and_numbers(tmp_path, value, positive):
    path = tmp_path / "clicks.json"
    path.write_text(
        json.dumps([{"plane": 0, "row": 1, "col": 2, "positive": value, "object_id": 1}])
    )
    assert read_click_records(path)[0].positive is positive


@pytest.mark.parametrize("value", ["maybe", "2", "-1", "0.5", "truee", 2, 0.5, [True]])
def test_other_positive_values_are_refused(tmp_path, value):
    path = tmp_path / "clicks.json"
    path.write_text(
        json.dumps([{"plane": 0, "row": 1, "col": 2, "positive": value, "object_id": 1}])
    )
    with pytest.raises(ValueError, match=r"click 1 .*'positive' must be true/false"):
        read_click_records(path)


@pytest.mark.parametrize("field", ["plane", "object_id"])
def test_fractional_ids_in_csv_are_refused(tmp_path, field):
    row = {"plane": "1", "row": "3", "col": "4", "positive": "1", "object_id": "2", field: "2.5"}
    path = tmp_path / "clicks.csv"
    path.write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n")
    with pytest.raises(ValueError, match=f"{field} must be a whole number, got '2.5'$"):
        read_click_records(path)  # (no word of large ids: new-user trial 3)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_large_object_ids_are_read_exactly(tmp_path, suffix):
    ids = [2**53 + 1, 2**64 - 1]  # beyond float precision
    path = tmp_path / f"clicks{suffix}"
    write_click_records(
        path, [ClickRecord(0, 1, 2, True, object_id=i, order=n) for n, i in enumerate(ids)]
    )
    assert [r.object_id for r in read_click_records(path)] == ids


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("object_id", 0, "object_id must be 1 or more"),
        ("object_id", -3, "object_id must be 1 or more"),
        ("plane", -1, "plane must be 0 or more"),
        ("axis", 3, "axis must be 0, 1 or 2"),
        ("object_id", 1e300, "object_id must be a whole number, got 1e.300, too large"),
        ("row", "nan", "row must be a finite number"),
        ("col", "inf", "col must be a finite number"),
    ],
)
def test_impossible_values_are_refused(tmp_path, field, value, message):
    row = {"plane": 1, "row": 3, "col": 4, "positive": True, "object_id": 2, field: value}
    path = tmp_path / "clicks.json"
    path.write_text(json.dumps([row]))
    with pytest.raises(ValueError, match=f"click 1 is not valid: {message}"):
        read_click_records(path)


def test_spreadsheet_quirks_bom_header_spaces_and_blank_rows(tmp_path):
    path = tmp_path / "clicks.csv"
    text = "Plane, Row ,Col,Positive,Object_ID\r\n3,4,5,FALSE,2\r\n,,,,\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    [record] = read_click_records(path)
    assert (record.plane, record.row, record.col, record.positive, record.object_id) == (
        3,
        4.0,
        5.0,
        False,
        2,
    )


@pytest.mark.parametrize("sep", [";", "\t"])
def test_spreadsheets_that_separate_with_semicolons_or_tabs_load(tmp_path, sep):
    path = tmp_path / "clicks.csv"
    rows = ["plane|row|col|positive|object_id", "2|84,5|90|WAHR|1", "2|10|10|FALSCH|1"]
    text = "\r\n".join(line.replace("|", sep) for line in rows) + "\r\n"  # decimal commas
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    records = read_click_records(path)
    assert [(r.plane, r.row, r.col, r.positive) for r in records] == [
        (2, 84.5, 90.0, True),
        (2, 10.0, 10.0, False),
    ]


def test_json_with_a_byte_order_mark_loads_and_bad_json_names_the_file(tmp_path):
    path = tmp_path / "clicks.json"
    row = {"plane": 0, "row": 1, "col": 2, "positive": "false", "object_id": 4}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([row]).encode())
    assert read_click_records(path)[0].object_id == 4
    path.write_text("[{")
    with pytest.raises(ValueError, match=r"clicks.json is not valid JSON"):
        read_click_records(path)


def test_a_json_object_without_clicks_says_what_it_holds(tmp_path):
    path = tmp_path / "clicks.json"
    path.write_text('{"items": [{"plane": 0, "row": 1, "col": 2}]}')
    with pytest.raises(ValueError, match="expected a list of clicks or an object with 'clicks' "
                       r"\(it has 'items'\)"):  # fmt: skip
        read_click_records(path)
    path.write_text(
        '{"records": [{"plane": 0, "row": 1, "col": 2, "positive": 1, "object_id": 3}]}'
    )
    assert read_click_records(path)[0].object_id == 3  # the layer metadata's layout


def test_unnamed_columns_and_trailing_commas_load_as_before(tmp_path):
    path = tmp_path / "clicks.csv"  # pandas' to_csv index, a spreadsheet's trailing commas
    path.write_text(",plane,row,col,positive,object_id,\n0,0,1,2,1,1,\n1,0,3,4,0,1,\n")
    assert [(r.row, r.positive) for r in read_click_records(path)] == [(1.0, True), (3.0, False)]


def test_errors_name_the_click_from_1_its_line_the_column_and_unknown_columns(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("plane,row,col,positive,object_id\n0,1,2,true,1\n\n0,9a2,2,true,1\n")
    with pytest.raises(
        ValueError, match=r"click 2 \(line 4\) is not valid: row must be a number, got '9a2'"
    ):
        read_click_records(path)
    path.write_text("plane,row,colum,positive,object_id\n0,1,2,true,1\n")
    with pytest.raises(
        ValueError, match=r"click 1 \(line 2\) lacks col and has unknown column\(s\) 'colum'"
    ):
        read_click_records(path)
