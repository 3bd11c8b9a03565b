"""What a newcomer copies from the docs works as written (issue 41, item 8): every study is in the
tables, the extending guide's dataset files run as copied, README's --dry-run line is the one a
first run prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from regbench.config import CONF_DIR
from tests.conftest import REPO, cli

STUDIES = sorted(p.stem for p in (CONF_DIR / "study").glob("*.yaml"))


@pytest.mark.parametrize("doc", ["README.md", "docs/sweeps.md"])
def test_every_study_is_in_the_table(doc: str) -> None:
    text = (REPO / doc).read_text()
    table = text[text.index("| study ") :].split("\n\n")[0]  # the table of studies, to its end
    rows = re.findall(r"^\| `([\w-]+)` *\|", table, re.M)
    assert sorted(rows) == STUDIES


def _block(text: str, first_line: str) -> str:
    """The fenced code block that starts with first_line (without it)."""
    start = text.index(first_line) + len(first_line) + 1
    return text[start : text.index("```", start)]


def test_the_extending_guides_dataset_runs_as_copied(tmp_path: Path) -> None:
    guide = (REPO / "docs" / "extending.md").read_text()
    conf = tmp_path / "regbench_conf"
    (conf / "data").mkdir(parents=True)
    (conf / "mydata.py").write_text(_block(guide, "# examples/regbench_conf/mydata.py"))
    yaml_text = _block(guide, "# examples/regbench_conf/data/mydata.yaml")
    (conf / "data" / "mydata.yaml").write_text(yaml_text)
    assert yaml_text == (REPO / "examples/regbench_conf/data/mydata.yaml").read_text()
    r = cli("train", "data=mydata", "--cfg", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "first_digits" in r.stdout


def test_readmes_dry_run_line_is_what_a_first_run_prints(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    command = re.search(r"^\$ regbench (sweep .*--dry-run)$", readme, re.M).group(1).split()
    r = cli(*command, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"{r.stdout.splitlines()[-1]}     # a first time" in readme
