"""Cloud CLI formatting: times for people in tables, numbers kept for scripts."""

from __future__ import annotations

import json

import pytest

from rtkvm.cli.cloud_format import show_list, show_one, time_cell


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1796395785.2370994, "2026-12-04T14:49:45Z"),
        (0, "1970-01-01T00:00:00Z"),
        (None, ""),
        ("not a time", "not a time"),
        (float("inf"), "inf"),
        (1e300, "1e+300"),
        (True, "True"),
    ],
)
def test_time_cell(value: object, shown: str) -> None:
    assert time_cell(value) == shown


def test_tables_show_times_json_and_value_keep_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    item = {"id": "m1", "created_at": 1796395785.2370994, "finished_at": None}
    show_one(item, "table")
    out = capsys.readouterr().out
    assert "| created_at  | 2026-12-04T14:49:45Z |" in out and "1796395785" not in out
    show_list([item], ("id", "created_at"), "table")
    assert "2026-12-04T14:49:45Z" in capsys.readouterr().out
    show_one(item, "json")
    assert json.loads(capsys.readouterr().out)["created_at"] == 1796395785.2370994
    show_list([item], ("id", "created_at"), "value")
    assert capsys.readouterr().out == "m1 1796395785.2370994\n"
