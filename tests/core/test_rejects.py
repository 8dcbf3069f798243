"""The rejects file: what a person opens in a spreadsheet to fix a file."""

import csv

from core.rejects import RejectWriter


def test_rejected_values_and_column_names_cannot_run_as_formulas(tmp_path):
    rejects = RejectWriter(tmp_path / "r.csv", ["external_id", "=name"])
    rejects.write(2, "line 2: column 'email' is blank", {"external_id": "-1", "=name": '=HYPERLINK("http://x")'})
    rejects.close()
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["line", "reason", "external_id", "'=name"],
                    ["2", "line 2: column 'email' is blank", "-1", "'=HYPERLINK(\"http://x\")"]]


def test_no_file_is_written_when_nothing_is_rejected(tmp_path):
    RejectWriter(tmp_path / "r.csv", ["a"]).close()
    assert not (tmp_path / "r.csv").exists()
