"""Kill and resume (issue 5): SIGKILL at a random step or Ctrl-C after any epoch, then resume,
gives the uninterrupted run's results; a write killed midway leaves the previous file; a corrupt or
foreign last.pt is a one-line error naming it."""

from __future__ import annotations

import csv
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from regbench import folder
from regbench.record import Summary
from regbench.run import checkpoint
from tests.conftest import (
    cli,
    cli_cmd,
    cli_env,
    cli_inprocess,
    make_cfg,
    metrics_rows,
    summary,
    summary_untimed,
    tree_hashes,
    truncate,
)

# ---- resume: SIGKILL at a random step, resume, identical results --------------------------------
RESUMABLE = [
    # dropout masks, augmentation and weight noise draw from their streams every step; early
    # stopping counts epochs without improvement across the kill (digits stops early at about the
    # last epoch)
    "reg=[dropout,aug,earlystop,weightnoise]",
    "reg.earlystop.monitor=val_acc",
    "reg.earlystop.patience=3",
    "sched=cosine",  # a per-batch schedule: its state must come back too
    "model.hidden=[64]",
    "trainer.epochs=10",
    "trainer.progress=none",
    "trainer.device=cpu",
    "name=run",  # same name in both out_dirs: summary.json's run_name must match as well
]


def kill_at_random_step(args: list[str], cwd: Path, run_dir: Path, rng: random.Random) -> int:
    """Start a run and SIGKILL it after a random number of epochs plus a random part of the next.

    Returns the epochs finished at the kill. The delay is a fraction of the last epoch's time, so
    the kill lands anywhere in the next epoch, checkpoint writes included.
    """
    done_before = len(metrics_rows(run_dir)) if (run_dir / "metrics.csv").exists() else 0
    wait_for = done_before + rng.randint(1, 2)
    proc = subprocess.Popen(
        cli_cmd("train", *args),
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while proc.poll() is None:
            try:
                with open(run_dir / "metrics.csv", newline="") as f:
                    rows = list(csv.DictReader(f))
            except FileNotFoundError:
                rows = []
            if len(rows) >= wait_for:
                time.sleep(rng.random() * float(rows[-1]["seconds"]))
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    return len(metrics_rows(run_dir))


def test_kill_and_resume_matches_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two SIGKILLs at random steps, each followed by resume=true: the same results as one run.

    Everything in metrics.csv and summary.json must match exactly except wall-clock timing
    (metrics.csv: seconds, samples_per_s; summary.json: wall_seconds), which never can.
    """
    from regbench.run.job import run

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run(make_cfg(*RESUMABLE, f"out_dir={whole}"))  # in this process: determinism across processes

    rng = random.Random(20261123)
    args = [*RESUMABLE, f"out_dir={cut}"]
    first = kill_at_random_step(args, tmp_path, cut / "run", rng)
    assert summary(cut / "run")["status"] == "running"
    second = kill_at_random_step([*args, "resume=true"], tmp_path, cut / "run", rng)
    assert first < second < 10, (first, second)  # the resumed run went on from where it was

    r = cli("train", *args, "resume=true", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"after epoch {second}" in r.stdout  # resumed from last.pt, not started over

    def config_lines(run_dir: Path) -> list[str]:
        return [
            ln for ln in (run_dir / "config.yaml").read_text().splitlines() if "out_dir" not in ln
        ]

    assert config_lines(cut / "run") == config_lines(whole / "run")
    assert metrics_rows(cut / "run") == metrics_rows(whole / "run")
    assert summary_untimed(cut / "run") == summary_untimed(whole / "run")
    assert summary(cut / "run")["status"] in folder.FINAL
    for ckpt in ("best.pt", "last.pt"):
        a = checkpoint.load(whole / "run" / ckpt)["model"]
        b = checkpoint.load(cut / "run" / ckpt)["model"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # resuming a finished run says so, changes nothing (but its log), and exits 0
    before = tree_hashes(cut / "run")
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = cli_inprocess("train", *args, "resume=true", monkeypatch=monkeypatch)
    assert code == 0 and "already finished" in stdout, stderr
    after = tree_hashes(cut / "run")
    assert {k: v for k, v in after.items() if k != "train.log"} == {
        k: v for k, v in before.items() if k != "train.log"
    }


def test_interrupt_after_any_epoch_then_resume_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic companion of the SIGKILL test: stop after each epoch in turn, then resume.

    Covers every epoch boundary, so every early-stopping counter value crosses a resume.
    """
    from regbench.run.job import run

    run(make_cfg(*RESUMABLE, f"out_dir={tmp_path / 'whole'}"))
    whole = tmp_path / "whole" / "run"
    write_metrics = folder.write_metrics
    for k in range(1, len(metrics_rows(whole))):
        out = tmp_path / f"stop-{k}"

        def stop_after_k(run_dir: Path, rows: list, k: int = k) -> None:
            write_metrics(run_dir, rows)
            if len(rows) == k:
                raise KeyboardInterrupt  # what Ctrl-C does: last.pt and metrics.csv are written

        monkeypatch.setattr(folder, "write_metrics", stop_after_k)
        with pytest.raises(KeyboardInterrupt):
            run(make_cfg(*RESUMABLE, f"out_dir={out}"))
        monkeypatch.setattr(folder, "write_metrics", write_metrics)
        assert summary(out / "run")["status"] == "interrupted"
        run(make_cfg(*RESUMABLE, f"out_dir={out}", "resume=true"))
        assert metrics_rows(out / "run") == metrics_rows(whole), k
        assert summary_untimed(out / "run") == summary_untimed(whole), k


# ---- atomic writes: SIGKILL in the middle of a write ----------------------------------------
KILLED_WRITE = """
import os, signal, sys, torch
from pathlib import Path
from regbench import folder
from regbench.record import Summary
from regbench.run import checkpoint
run_dir, what, point = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
setattr(os, point, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL))
if what == "checkpoint":
    checkpoint.save(run_dir / "last.pt", {"model": {"w": torch.ones(1000)}})
elif what == "summary":
    folder.write_summary(run_dir, Summary.note_of("completed", run_dir.name))
else:
    folder.write_metrics(run_dir, [{"epoch": 1}, {"epoch": 2}])
"""


@pytest.mark.parametrize(
    "what, point",
    [
        ("checkpoint", "fsync"),
        ("checkpoint", "replace"),
        ("summary", "fsync"),
        ("metrics", "replace"),
    ],
)
def test_kill_during_write_keeps_previous_file(what: str, point: str, tmp_path: Path) -> None:
    """SIGKILL after the data is written but before it is on disk (fsync) or renamed (replace)."""
    checkpoint.save(tmp_path / "last.pt", {"model": {"w": torch.zeros(1000)}})
    folder.write_summary(tmp_path, Summary.note_of("running", tmp_path.name))
    folder.write_metrics(tmp_path, [{"epoch": 1}])
    before = tree_hashes(tmp_path)
    r = subprocess.run(
        [sys.executable, "-c", KILLED_WRITE, str(tmp_path), what, point],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert r.returncode == -signal.SIGKILL, r.stderr
    leftovers = sorted(p.name for p in tmp_path.glob(".*.tmp"))
    assert len(leftovers) == 1, leftovers  # the killed write's temporary file, nothing else
    assert {k: v for k, v in tree_hashes(tmp_path).items() if k not in leftovers} == before
    assert torch.equal(checkpoint.load(tmp_path / "last.pt")["model"]["w"], torch.zeros(1000))
    folder.lock(tmp_path).release()  # the next holder of the folder clears what the killed one left
    assert not list(tmp_path.glob(".*.tmp"))


# ---- checkpoints: corrupt or foreign last.pt --------------------------------------------------
def _garbage(path: Path) -> None:
    path.write_bytes(b"not a checkpoint\n" * 100)


def _pickled_module(path: Path) -> None:
    torch.save(torch.nn.Linear(2, 2), path)  # needs unpickling code: weights_only refuses it


def _no_model(path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, path)


def _other_model(path: Path) -> None:
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, path)


def _begun_on_cuda(path: Path) -> None:
    ck = checkpoint.load(path)
    ck["rng"]["device"] = "cuda"  # as written by a run on a GPU, now resumed on this CPU
    checkpoint.save(path, ck)


@pytest.mark.parametrize(
    "spoil",
    [truncate, _garbage, _pickled_module, _no_model, _other_model, _begun_on_cuda],
    ids=lambda f: f.__name__,
)
def test_bad_checkpoint_is_one_line_naming_the_file(
    spoil: Callable[[Path], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from regbench.run.job import run

    overrides = [
        "trainer.epochs=1",
        "trainer.progress=none",
        "data.subset=128",
        "model.hidden=[16]",
        f"out_dir={tmp_path}",
        "name=r",
    ]
    run(make_cfg(*overrides))
    run_dir = tmp_path / "r"
    # what a SIGKILL leaves: the summary still says running, so resume goes to last.pt
    folder.write_summary(run_dir, Summary.note_of("running", "r"))
    spoil(run_dir / "last.pt")
    kept = {k: v for k, v in tree_hashes(run_dir).items() if k not in ("summary.json", "train.log")}
    capsys.readouterr()

    with pytest.raises(SystemExit) as exit_:
        run(make_cfg(*overrides, "resume=true"))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert str(run_dir / "last.pt") in err
    assert spoil is not _begun_on_cuda or "resume with trainer.device=cuda" in err, err
    after = tree_hashes(run_dir)
    assert {k: v for k, v in after.items() if k in kept} == kept  # the checkpoint is kept as is
