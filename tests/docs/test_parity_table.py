"""docs/parity.md names, for every row, the test that pins it: each name must be a test that exists, so a
renamed or deleted test cannot leave a row pinned by nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARITY = ROOT / "docs" / "parity.md"


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")}


def test_every_test_the_parity_table_names_exists():
    text = PARITY.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| **") or line.startswith("| ")]
    cited = 0
    current: Path | None = None
    for row in rows:
        cells = row.split(" | ")
        pinned = cells[-1] if len(cells) >= 4 else ""
        # `dir/file.py::test_a`, `::test_b` (same file as the last one named), or a bare file (all its tests).
        for file, name in re.findall(r"`(?:([\w/]+\.py))?(?:::(test_\w+))?", pinned):
            if file:
                current = ROOT / "tests" / file
                assert current.is_file(), f"docs/parity.md names {file}, which does not exist"
            if name:
                assert current is not None, f"{name} has no file before it"
                assert name in defined_tests(current), f"docs/parity.md names {current.name}::{name}"
                cited += 1
    assert cited >= 30  # the table pins its rows; a parsing slip must not make this pass on nothing
