"""Every fact said once in regbench/: the summary keys in record.py (the module that owns
summary.json), the packaged datasets' names in datasets.py (their registry), the regularizers'
in conf/reg/ (one file each: schema_reg.py builds `Reg` from them and names in `NARROWER` those
whose knobs need narrower ranges than their defaults' types) and the config groups in
config.py (read from conf/config.yaml's defaults list); everything else derives them. The test
reads the code (ast): a literal tuple, list, set or dict that names enough of one fact's names
elsewhere is a second definition."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from regbench.config import GROUPS, group_options
from regbench.datasets import DATASETS
from regbench.folder import METRICS as COLUMNS
from regbench.record import FIELDS
from regbench.seeds import STREAMS

PACKAGE = Path(__file__).resolve().parents[1] / "regbench"
# the note fields are words of their own (a status, a seed, an error) used everywhere, and
# metrics.csv's columns (folder.METRICS) are another fact that shares some names
SUMMARY_KEYS = {k for k, o in FIELDS.items() if not o.note and k != "seed"} - set(COLUMNS)
# aug and dropout are also the names of random streams (seeds.STREAMS), and none is a word of
# its own (sched=none, aux=none, data.preprocess=none)
REGULARIZERS = set(group_options("reg")) - set(STREAMS) - {"none"}
# (names, owner module, how many of them make a list): a rule about a few groups names them
# (compare labels data, model, reg and optim by value); a list of most of them is a second list
FACTS = {
    "summary keys": (SUMMARY_KEYS, "record.py", 2),
    "dataset names": (set(DATASETS), "datasets.py", 2),
    "regularizer names": (REGULARIZERS, "schema_reg.py", 2),
    "config group names": (set(GROUPS), "config.py", len(GROUPS) // 2 + 1),
}


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


def definitions(names: set[str], owner: str, enough: int = 2) -> list[str]:
    """Where regbench/ lists `enough` or more of `names` outside their owner module."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == owner and path.parent == PACKAGE:
            continue
        for line, strings in _literals(ast.parse(path.read_text())):
            if len(strings & names) >= enough:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    return found


@pytest.mark.parametrize("fact", FACTS)
def test_each_list_is_defined_once(fact):
    names, owner, enough = FACTS[fact]
    assert definitions(names, owner, enough) == [], f"{fact} listed again outside regbench/{owner}"


def test_the_check_finds_a_second_definition(tmp_path, monkeypatch):
    (tmp_path / "regbench").mkdir()
    (tmp_path / "regbench" / "extra.py").write_text('SHOWN = ("test_acc", "test_loss")\n')
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "regbench")
    assert definitions(SUMMARY_KEYS, "record.py") == ["regbench/extra.py:1"]


@pytest.mark.parametrize(
    ("fact", "text"),
    [
        ("dataset names", 'ONE_CHANNEL = ("digits", "mnist", "fashion_mnist")\n'),
        ("regularizer names", 'PENALTIES = {"l1": 0.0, "l2": 0.0}\n'),
        (
            "config group names",
            'GROUPS = ("data", "model", "reg", "optim", "sched", "init", "seeds")\n',
        ),
    ],
)
def test_the_check_finds_each_fact_listed_again(fact, text, tmp_path, monkeypatch):
    (tmp_path / "regbench").mkdir()
    (tmp_path / "regbench" / "extra.py").write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "regbench")
    assert definitions(*FACTS[fact]) == ["regbench/extra.py:1"]
