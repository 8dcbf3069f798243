"""Writing a CSV for an importer and reading its rejects back: shared by the importer tests."""

import csv


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def rejects_of(result):
    with open(result.rejects_path, newline="", encoding="utf-8") as fh:
        return {int(row["line"]): row["reason"] for row in csv.DictReader(fh)}
