"""docs/reliability.md: every row of its catalogue names a test that exists,
and the catalogue has at least 40 rows (issue 14)."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW = re.compile(r"^\|.*\|\s*(tests/[\w/]+\.py)::(\w+)\S*\s*\|\s*$")


def _rows():
    with open(os.path.join(ROOT, "docs", "reliability.md"), encoding="utf-8") as f:
        return [ROW.match(line) for line in f if line.startswith("| ")
                and not line.startswith(("| CLI", "| ---"))]


def _tests(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_row_names_an_existing_test():
    rows = _rows()
    assert all(rows), "a catalogue row without a tests/FILE.py::test_name"
    missing = [f"{m[1]}::{m[2]}" for m in rows if m[2] not in _tests(m[1])]
    assert not missing


def test_the_catalogue_has_at_least_40_rows():
    assert len(_rows()) >= 40
