"""Run folders (issues 5, 12): runs started together get a folder each, a locked or read-only
folder is refused in one line, a finished run releases its lock, and random valid configurations
each write a complete folder."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import given, settings
from hypothesis import strategies as st

from regbench import folder
from regbench.config import group_options
from regbench.run import checkpoint
from tests.conftest import (
    assert_one_line_error,
    cli,
    cli_cmd,
    cli_env,
    make_cfg,
    metrics_rows,
    summary,
    tree_hashes,
)


# ---- names: a name already taken by another config gets a new folder -------------------------
def test_same_name_other_config_gets_new_folder(tmp_path: Path) -> None:
    from regbench.run.job import run

    out = tmp_path / "out"
    base = [
        "trainer.epochs=1",
        "trainer.progress=none",
        "data.subset=128",
        "name=myrun",
        f"out_dir={out}",
    ]
    run(make_cfg(*base, "seed=1"))
    before = tree_hashes(out / "myrun")
    run(make_cfg(*base, "seed=2"))
    assert tree_hashes(out / "myrun") == before  # never mixed into the first run's folder
    assert "seed: 2" in (out / "myrun-1" / "config.yaml").read_text().splitlines()
    assert summary(out / "myrun-1")["run_name"] == "myrun-1"


# ---- concurrency -------------------------------------------------------------------------------
def test_two_processes_one_name_get_two_folders(tmp_path: Path) -> None:
    """Started together: each run ends in its own folder holding its own config and results."""
    out = tmp_path / "out"
    base = ["trainer.epochs=2", "trainer.progress=none", "name=same", f"out_dir={out}"]
    procs = {
        seed: subprocess.Popen(
            cli_cmd("train", *base, f"seed={seed}"),
            cwd=tmp_path,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    }
    folders = {}
    for seed, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        (line,) = [ln for ln in stdout.splitlines() if ln.startswith("run folder ")]
        folders[seed] = Path(line.removeprefix("run folder "))
    assert sorted(p.name for p in folders.values()) == ["same", "same-1"]
    for seed, run_dir in folders.items():
        assert f"seed: {seed}" in (run_dir / "config.yaml").read_text().splitlines()
        s = summary(run_dir)
        assert (s["seed"], s["run_name"], s["status"]) == (seed, run_dir.name, "completed")
        assert [row["epoch"] for row in metrics_rows(run_dir)] == ["1", "2"]
        assert "train loss" in (run_dir / "train.log").read_text()
    # different seeds, different numbers: neither folder holds the other process's rows
    assert metrics_rows(folders[1]) != metrics_rows(folders[2])


def test_locked_run_folder_is_refused(existing_out: Path, tmp_path: Path) -> None:
    """A folder held by another process (its lock) is never written by a second one."""
    run_dir = existing_out / "existing"
    before = tree_hashes(existing_out)
    with FileLock(run_dir / folder.LOCK):
        r = cli(
            "train",
            "name=existing",
            "trainer.epochs=1",
            "trainer.progress=none",
            f"out_dir={existing_out}",
            "resume=true",
            cwd=tmp_path,
        )
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert "in use by another regbench process" in line
    assert tree_hashes(existing_out) == before


# ---- read-only folders (issue 12): root ignores permissions, the immutable attribute it obeys ---
@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`chattr +i`: nothing is created, renamed or removed inside, even by root."""
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("chattr +i (the immutable attribute) is not available on this file system")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


TINY = ["trainer.progress=none", "data.subset=128", "model.hidden=[16]"]


def test_resume_in_read_only_run_folder_is_one_line(tmp_path: Path) -> None:
    from regbench.run.job import run

    out = tmp_path / "out"
    run(make_cfg(*TINY, "trainer.epochs=1", "name=ro", f"out_dir={out}"))
    (out / "ro" / "summary.json").unlink()  # as after a kill: unfinished, resumable
    before = tree_hashes(out)
    with read_only(out / "ro"):
        r = cli(
            "train",
            *TINY,
            "trainer.epochs=1",
            "name=ro",
            f"out_dir={out}",
            "resume=true",
            cwd=tmp_path,
        )
    assert "is read-only" in assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert tree_hashes(out) == before


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_read_only_out_dir_is_one_line(command: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    args = [*TINY, "trainer.epochs=1", f"out_dir={out}"] + (
        ["seed=0,1"] if command == "sweep" else []
    )
    with read_only(out):
        r = cli(command, *args, cwd=tmp_path)
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert str(out) in line and "out_dir=" in line
    assert list(out.iterdir()) == []


def test_sweep_name_with_slash_is_refused_before_any_job(tmp_path: Path) -> None:
    r = cli("sweep", *TINY, "trainer.epochs=1", "seed=0,1", "sweep_name=a/b", cwd=tmp_path)
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert "invalid value for 'sweep_name' ('a/b')" in line
    assert not (tmp_path / "outputs").exists()


# ---- random valid configurations: none crashes, each writes a complete run folder -------------
MODELS = {
    "mlp": ["model.hidden=[32]"],
    "cnn": ["model.channels=[8,16]", "model.hidden=32"],
    "vgg": ["model.width=8"],
    "resnet": ["model.depth=20", "model.width=8"],
}
REGS = [r for r in group_options("reg") if r != "none"]
# normal_0.01 / normal_1 are the lecture decks' failing initialisations (vanishing / exploding
# activations): diverging is what they are for (tests/test_decks.py), not a broken run folder
INITS = [i for i in group_options("init") if not i.startswith("normal_")]


@settings(max_examples=12, deadline=None)
@given(
    model=st.sampled_from(sorted(MODELS)),
    regs=st.one_of(st.just(["none"]), st.lists(st.sampled_from(REGS), min_size=1, unique=True)),
    optim=st.sampled_from(group_options("optim")),
    sched=st.sampled_from(group_options("sched")),
    init=st.sampled_from(INITS),
    seed=st.integers(0, 2**16),
)
def test_random_valid_configs_write_complete_run_folders(
    tmp_path_factory: pytest.TempPathFactory,
    model: str,
    regs: list[str],
    optim: str,
    sched: str,
    init: str,
    seed: int,
) -> None:
    from regbench.run.job import run

    out = tmp_path_factory.mktemp("random")
    cfg = make_cfg(
        f"model={model}",
        *MODELS[model],
        f"reg=[{','.join(regs)}]",
        f"optim={optim}",
        f"sched={sched}",
        f"init={init}",
        f"seed={seed}",
        "data.subset=128",
        "trainer.epochs=1",
        "trainer.progress=none",
        "trainer.device=cpu",
        f"out_dir={out}",
    )
    result = run(cfg)
    (run_dir,) = out.iterdir()
    for name in ("config.yaml", "metrics.csv", "summary.json", "best.pt", "last.pt", "train.log"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "config.yaml").read_text() == folder.config_yaml(cfg)
    s = summary(run_dir)
    assert s["status"] == "completed" and s["epochs_run"] == 1 and s["error"] is None
    assert s["tested"] == ("best" if "earlystop" in regs else "last")
    assert math.isfinite(s["test_acc"]) and result == s["best_val_acc"]
    (row,) = metrics_rows(run_dir)
    assert row["epoch"] == "1" and all(math.isfinite(float(v)) for v in row.values())
    assert checkpoint.load(run_dir / "last.pt")["rows"][0]["epoch"] == 1
    assert set(checkpoint.load(run_dir / "best.pt")["model"]) == set(
        checkpoint.load(run_dir / "last.pt")["model"]
    )


def test_run_releases_its_folder_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In one process (a sweep's jobs, these tests) a finished run must not keep its folder locked."""
    from regbench.run.job import run

    taken: list[FileLock] = []
    lock = folder.lock
    monkeypatch.setattr(folder, "lock", lambda run_dir: taken.append(lock(run_dir)) or taken[-1])
    overrides = [
        "trainer.epochs=1",
        "trainer.progress=none",
        "data.subset=128",
        f"out_dir={tmp_path}",
    ]
    run(make_cfg(*overrides))
    run(make_cfg(*overrides, "resume=true"))  # already finished: returns early
    assert len(taken) == 2 and not any(fl.is_locked for fl in taken)
    assert not folder.is_locked(next(tmp_path.iterdir()))
