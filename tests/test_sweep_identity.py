"""A sweep's identity is what changes its runs' results (issue 40): the order of values, the
bookkeeping keys and the seeds leave its folder as it is, so that a rerun with more seeds extends
the sweep and one on another device resumes it; a folder named the former way is still found."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.conftest import cli

TINY = ["trainer.epochs=1", "data.subset=120"]


def _folder(r) -> str:  # noqa: ANN001 - a CompletedProcess
    assert r.returncode == 0, r.stderr
    return re.search(r"\(sweep folder (\S+)\)", r.stdout).group(1)


def test_value_order_and_bookkeeping_keys_leave_the_sweep_folder_as_it_is(tmp_path: Path) -> None:
    base = ["sweep", "reg=dropout,none", "seed=0,1", *TINY, f"out_dir={tmp_path}", "--dry-run"]
    first = _folder(cli(*base))
    same = [
        ["reg=none,dropout"],
        ["trainer.progress=none"],
        ["trainer.device=cpu", "trainer.eval_batch_size=64"],
        [f"data.root={tmp_path / 'data'}"],
        ["seed=0,1,2,3"],  # more seeds: the same study, extended
        ["seed=1,0", "trainer.fuse=2"],
        ["data=digits", "model=mlp", "trainer.batch_size=64"],  # defaults spelt out
    ]
    for change in same:
        keys = {c.split("=")[0] for c in change}
        args = [a for a in base if a.split("=")[0] not in keys] + change
        assert _folder(cli(*args)) == first, change
    other = [a if a != "trainer.epochs=1" else "trainer.epochs=2" for a in base]
    assert _folder(cli(*other)) != first  # what changes the results names another sweep
    # a default's value under another option of its group is not that default
    assert _folder(cli(*base, "optim=sgd", "optim.lr=0.001")) != _folder(cli(*base, "optim=sgd"))


def test_more_seeds_extend_a_sweep_and_its_finished_runs_are_skipped(tmp_path: Path) -> None:
    args = ["sweep", "reg=none", *TINY, f"out_dir={tmp_path}", "trainer.progress=none"]
    assert cli(*args, "seed=0,1").returncode == 0
    r = cli(*args, "seed=0,1,2", "trainer.device=cpu")
    assert r.returncode == 0, r.stderr
    (sweep,) = (tmp_path / "sweeps").iterdir()
    runs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert runs == [f"mlp-none-adam-s{s}" for s in range(3)]
    for s in (0, 1):  # trained once, skipped by the second command
        assert (sweep / f"mlp-none-adam-s{s}" / "train.log").read_text().count("run folder ") == 1
    assert "finished runs" in r.stdout and re.search(r"all runs\s*│\s*3\s*│", r.stdout)


def test_a_sweep_folder_named_the_former_way_is_still_found(tmp_path: Path) -> None:
    job = ["reg=none", "seed=0", *TINY, "trainer.progress=none"]
    legacy = "grid-" + hashlib.sha1("\n".join(sorted(job)).encode()).hexdigest()[:8]
    assert cli("sweep", *job, f"out_dir={tmp_path}", f"sweep_name={legacy}").returncode == 0
    r = cli("sweep", *job, f"out_dir={tmp_path}", "--dry-run")
    assert _folder(r) == str(tmp_path / "sweeps" / legacy) and "1 already done" in r.stdout


def test_a_sweep_named_with_its_defaults_spelt_out_is_still_found(tmp_path: Path) -> None:
    job = ["reg=none", "seed=0", *TINY, "trainer.progress=none", "model=mlp"]
    spelt = (
        "grid-"
        + hashlib.sha1("\n".join(sorted(["reg=none", *TINY, "model=mlp"])).encode()).hexdigest()[:8]
    )
    assert cli("sweep", *job, f"out_dir={tmp_path}", f"sweep_name={spelt}").returncode == 0
    r = cli("sweep", *job, f"out_dir={tmp_path}", "--dry-run")
    assert _folder(r) == str(tmp_path / "sweeps" / spelt) and "1 already done" in r.stdout
