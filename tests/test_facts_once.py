"""Every fact said once in regbench/: a list of summary keys is defined in record.py, the module
that owns summary.json, and derived everywhere else. The test reads the code (ast): a literal
tuple, list, set or dict that names two or more of them elsewhere is a second definition."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from regbench.folder import METRICS as COLUMNS
from regbench.record import FIELDS

PACKAGE = Path(__file__).resolve().parents[1] / "regbench"
# the note fields are words of their own (a status, a seed, an error) used everywhere, and
# metrics.csv's columns (folder.METRICS) are another fact that shares some names
SUMMARY_KEYS = {k for k, o in FIELDS.items() if not o.note and k != "seed"} - set(COLUMNS)
FACTS = {"summary keys": (SUMMARY_KEYS, "record.py")}


def _literals(tree: ast.AST) -> list[tuple[int, set[str]]]:
    """(line, the string constants) of every tuple, list, set and dict literal in the tree."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None]
        else:
            continue
        names = {e.value for e in items if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        out.append((node.lineno, names))
    return out


def definitions(names: set[str], owner: str) -> list[str]:
    """Where regbench/ lists two or more of `names` outside their owner module."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == owner and path.parent == PACKAGE:
            continue
        for line, strings in _literals(ast.parse(path.read_text())):
            if len(strings & names) >= 2:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    return found


@pytest.mark.parametrize("fact", FACTS)
def test_each_list_is_defined_once(fact):
    names, owner = FACTS[fact]
    assert definitions(names, owner) == [], f"{fact} listed again outside regbench/{owner}"


def test_the_check_finds_a_second_definition(tmp_path, monkeypatch):
    (tmp_path / "regbench").mkdir()
    (tmp_path / "regbench" / "extra.py").write_text('SHOWN = ("test_acc", "test_loss")\n')
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "regbench")
    assert definitions(SUMMARY_KEYS, "record.py") == ["regbench/extra.py:1"]
