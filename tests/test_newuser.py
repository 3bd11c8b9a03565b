"""Issue 12, what a new user hit: resume, Ctrl-C, the summary, run names, the README's paths."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regbench.naming import run_name
from regbench.run.job import run
from tests.conftest import cli, ctrl_c_works, make_cfg, summary

REPO = Path(__file__).resolve().parents[1]
TINY = ["trainer.progress=none", "data.subset=128", "model.hidden=[16]"]


# ---- resume ---------------------------------------------------------------------------------------
def _unfinish(run_dir: Path) -> None:
    """As after a kill during the run: summary.json says running, metrics stop early."""
    (run_dir / "summary.json").write_text(json.dumps({"status": "running", "error": None}))


def test_resume_ignores_bookkeeping_and_continues_first_unfinished(tmp_path: Path) -> None:
    out = tmp_path / "out"
    base = [*TINY, "trainer.epochs=2", f"out_dir={out}", "trainer.device=cpu"]
    for _ in range(3):  # three runs of one config: name, name-1, name-2
        run(make_cfg(*base))
    first, second, third = (
        out / n for n in ("mlp-none-adam-s0", "mlp-none-adam-s0-1", "mlp-none-adam-s0-2")
    )
    _unfinish(second)
    _unfinish(third)
    # other display, device spelling, evaluation chunks: still the same run
    r = cli(
        "train",
        *base[:-1],
        "trainer.device=auto",
        "trainer.progress=plain",
        "trainer.eval_batch_size=100",
        "resume=true",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert f"run folder {second}" in r.stdout  # the first unfinished one, not the finished first
    assert summary(second)["status"] == "completed"
    assert summary(third)["status"] == "running"  # untouched
    assert summary(first)["status"] == "completed"


def test_resume_of_finished_runs_says_so(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(make_cfg(*TINY, "trainer.epochs=1", f"out_dir={out}"))
    r = cli("train", *TINY, "trainer.epochs=1", f"out_dir={out}", "resume=true", cwd=tmp_path)
    assert r.returncode == 0 and "already finished (completed)" in r.stdout, r.stdout + r.stderr


# ---- Ctrl-C and the summary ---------------------------------------------------------------------
def test_ctrl_c_prints_one_line_that_resumes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    args = ["train", *TINY, "trainer.epochs=60"]
    p = subprocess.Popen(
        [sys.executable, "-m", "regbench", *args],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=ctrl_c_works,
    )
    metrics = tmp_path / "outputs" / "mlp-none-adam-s0" / "metrics.csv"
    deadline = time.monotonic() + 120
    while not metrics.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    (line,) = err.splitlines()
    assert line.startswith("interrupted: continue with regbench train ") and "Traceback" not in err
    command = shlex.split(line.split("continue with ", 1)[1])
    assert command[-1] == "resume=true"
    assert len(metrics.read_text().splitlines()) - 1 < 60  # stopped before the end
    r = cli(*command[1:], cwd=tmp_path)  # the printed command, exactly as the user runs it
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stdout and summary(metrics.parent)["epochs_run"] == 60


def test_summary_folder_line_is_never_wrapped(tmp_path: Path) -> None:
    out = tmp_path / ("a-folder-name-longer-than-the-terminal-" * 2)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "40"}
    r = subprocess.run(
        [sys.executable, "-m", "regbench", "train", *TINY, "trainer.epochs=1", f"out_dir={out}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert f"summary of {out / 'mlp-none-adam-s0'}" in r.stdout.splitlines()


# ---- run names -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, expected", [("digits", "mlp-none-adam-s0"), ("mnist", "mnist-mlp-none-adam-s0")]
)
def test_run_name_carries_a_non_default_dataset(data: str, expected: str) -> None:
    assert run_name(make_cfg(f"data={data}")) == expected


def test_digits_and_mnist_runs_do_not_collide(mnist_root: Path, tmp_path: Path) -> None:
    for data in ("data=digits", "data=mnist"):
        run(
            make_cfg(
                *TINY, "trainer.epochs=1", data, f"data.root={mnist_root}", f"out_dir={tmp_path}"
            )
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mlp-none-adam-s0",
        "mnist-mlp-none-adam-s0",
    ]


# ---- the README ----------------------------------------------------------------------------------
# each with a path its scan must find (it finds paths at all)
READMES = {"README.md": "CONTRIBUTING.md"}


def _readme_paths(readme: str) -> list[str]:
    """Repository paths the README names (the "Comparing runs" section is checked by its owner)."""
    text = (REPO / readme).read_text()
    text = re.sub(r"\n## Comparing runs\n.*?(?=\n## )", "\n", text, flags=re.S)
    found = re.findall(
        r"(?<![\w/.-])((?:conf|docs|benchmarks|examples|tests|regbench)/[\w./-]*)", text
    )
    found += re.findall(r"\]\(([^)#:]+)\)", text)  # links and images
    return sorted(set(found))


@pytest.mark.parametrize("readme", READMES)
def test_every_path_in_the_readme_exists(readme: str) -> None:
    paths = _readme_paths(readme)
    assert READMES[readme] in paths
    missing = [p for p in paths if not (REPO / p).exists()]
    assert not missing, missing


def test_the_readme_is_short_and_links_into_the_docs() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for page in ("docs/getting-started.md", "docs/reference.md", "docs/tutorial.md"):
        assert f"]({page})" in text


# ---- sweeps ---------------------------------------------------------------------------------------
def test_submitit_leaves_no_folder_named_percent_j(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the slurm extra")
    r = cli(
        "sweep",
        *TINY,
        "trainer.epochs=1",
        "seed=0,1",
        "sweep_name=sj",
        "hydra/launcher=submitit_local",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert not [p for p in tmp_path.rglob("*") if "%" in p.name]
    logs = tmp_path / "outputs" / "sweeps" / "sj" / ".submitit"
    assert len(list(logs.glob("*_0_log.out"))) == 2  # one log per job, named by its job id
