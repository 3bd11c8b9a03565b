"""Reliability (issue 5): kill-and-resume, bad input, concurrent runs, random valid configs.

Subprocess tests run the real CLI from this checkout (PYTHONPATH), in a temporary folder; the
MNIST originals are copied to a temporary folder and the tests that need them skip without them.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from hydra import compose, initialize_config_dir
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig
from typer.testing import CliRunner

from regbench import runs
from regbench.cli import app
from regbench.config import CONF_DIR, group_options

REPO = Path(__file__).resolve().parents[1]
MNIST_RAW = Path("/work/shared/datasets/MNIST/raw")  # read-only originals; never used in place
TIMING_COLUMNS = ("seconds", "samples_per_s")  # wall-clock: differs between any two runs
TIMING_FIELDS = ("wall_seconds",)


# ---- helpers ------------------------------------------------------------------------------------
def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "regbench", *args]


def cli_env() -> dict[str, str]:
    # this checkout's regbench, whatever an installed (editable) copy points to
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_cmd(*args), capture_output=True, text=True, cwd=cwd, env=cli_env(), timeout=300
    )


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file below root, by relative path (hidden files and the lock included)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    """metrics.csv as written (strings, compared exactly), without the timing columns."""
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for col in TIMING_COLUMNS:
            row.pop(col)
    return rows


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def summary_untimed(run_dir: Path) -> dict:
    s = summary(run_dir)
    for key in TIMING_FIELDS:
        s.pop(key)
    return s


def make_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def assert_one_line_error(code: int | None, stdout: str, stderr: str) -> str:
    """Exit code 2, stderr exactly one `error:` line, no traceback anywhere; returns the line."""
    assert code == 2, (code, stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0][7:].strip(), stderr
    return lines[0]


def cli_inprocess(*args: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int | None, str, str]:
    """The Typer app in this process (no interpreter start-up): exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # `train` hands its overrides to Hydra there
    r = CliRunner().invoke(app, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


def has_command(name: str) -> bool:
    r = subprocess.run(cli_cmd("--help"), capture_output=True, text=True, env=cli_env())
    return any(line.split()[:1] == [name] for line in r.stdout.replace("│", " ").splitlines())


@pytest.fixture(scope="module")
def mnist_gz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine copy of the MNIST .gz originals; tests copy it again before damaging anything."""
    if len(list(MNIST_RAW.glob("*.gz"))) < 4:
        pytest.skip(f"MNIST originals not present in {MNIST_RAW}")
    dst = tmp_path_factory.mktemp("mnist-gz") / "MNIST" / "raw"
    dst.mkdir(parents=True)
    for gz in MNIST_RAW.glob("*.gz"):
        shutil.copy(gz, dst)
    return dst.parent.parent


@pytest.fixture(scope="module")
def existing_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An out_dir holding one finished run: the bad-input tests must leave it byte-identical."""
    from regbench.solo import run

    out = tmp_path_factory.mktemp("existing") / "out"
    run(make_cfg("name=existing", "trainer.epochs=1", "trainer.progress=none", f"out_dir={out}"))
    return out


# ---- resume: SIGKILL at a random step, resume, identical results --------------------------------
RESUMABLE = [
    # dropout masks and augmentation draw from the torch RNG every step; early stopping counts
    # epochs without improvement across the kill (digits stops early at about the last epoch)
    "reg=[dropout,aug,earlystop]",
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
    from regbench.solo import run

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
    assert summary(cut / "run")["status"] in runs.FINAL
    for ckpt in ("best.pt", "last.pt"):
        a = runs.load_checkpoint(whole / "run" / ckpt)["model"]
        b = runs.load_checkpoint(cut / "run" / ckpt)["model"]
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
    from regbench.solo import run

    run(make_cfg(*RESUMABLE, f"out_dir={tmp_path / 'whole'}"))
    whole = tmp_path / "whole" / "run"
    write_metrics = runs.write_metrics
    for k in range(1, len(metrics_rows(whole))):
        out = tmp_path / f"stop-{k}"

        def stop_after_k(run_dir: Path, rows: list, k: int = k) -> None:
            write_metrics(run_dir, rows)
            if len(rows) == k:
                raise KeyboardInterrupt  # what Ctrl-C does: last.pt and metrics.csv are written

        monkeypatch.setattr(runs, "write_metrics", stop_after_k)
        with pytest.raises(KeyboardInterrupt):
            run(make_cfg(*RESUMABLE, f"out_dir={out}"))
        monkeypatch.setattr(runs, "write_metrics", write_metrics)
        assert summary(out / "run")["status"] == "interrupted"
        run(make_cfg(*RESUMABLE, f"out_dir={out}", "resume=true"))
        assert metrics_rows(out / "run") == metrics_rows(whole), k
        assert summary_untimed(out / "run") == summary_untimed(whole), k


# ---- atomic writes: SIGKILL in the middle of a write ----------------------------------------
KILLED_WRITE = """
import os, signal, sys, torch
from pathlib import Path
from regbench import runs
run_dir, what, point = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
setattr(os, point, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL))
if what == "checkpoint":
    runs.save_checkpoint(run_dir / "last.pt", {"model": {"w": torch.ones(1000)}})
elif what == "summary":
    runs.write_summary(run_dir, {"status": "completed"})
else:
    runs.write_metrics(run_dir, [{"epoch": 1}, {"epoch": 2}])
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
    runs.save_checkpoint(tmp_path / "last.pt", {"model": {"w": torch.zeros(1000)}})
    runs.write_summary(tmp_path, {"status": "running"})
    runs.write_metrics(tmp_path, [{"epoch": 1}])
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
    assert torch.equal(runs.load_checkpoint(tmp_path / "last.pt")["model"]["w"], torch.zeros(1000))
    runs.lock(tmp_path).release()  # the next holder of the folder clears what the killed one left
    assert not list(tmp_path.glob(".*.tmp"))


# ---- checkpoints: corrupt or foreign last.pt --------------------------------------------------
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a checkpoint\n" * 100)


def _pickled_module(path: Path) -> None:
    torch.save(torch.nn.Linear(2, 2), path)  # needs unpickling code: weights_only refuses it


def _no_model(path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, path)


def _other_model(path: Path) -> None:
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, path)


@pytest.mark.parametrize(
    "spoil",
    [_truncate, _garbage, _pickled_module, _no_model, _other_model],
    ids=lambda f: f.__name__,
)
def test_bad_checkpoint_is_one_line_naming_the_file(
    spoil: Callable[[Path], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from regbench.solo import run

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
    runs.write_summary(run_dir, {"status": "running", "run_name": "r", "error": None})
    spoil(run_dir / "last.pt")
    kept = {k: v for k, v in tree_hashes(run_dir).items() if k not in ("summary.json", "train.log")}
    capsys.readouterr()

    with pytest.raises(SystemExit) as exit_:
        run(make_cfg(*overrides, "resume=true"))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert str(run_dir / "last.pt") in err
    after = tree_hashes(run_dir)
    assert {k: v for k, v in after.items() if k in kept} == kept  # the checkpoint is kept as is


# ---- bad input: one line, exit code 2, nothing lost ---------------------------------------------
def _mnist_copy(mnist_gz: Path, tmp: Path, extract: bool) -> Path:
    root = tmp / "datasets"
    shutil.copytree(mnist_gz, root)
    if extract:  # torchvision's layout after a first load: each .gz next to its idx file
        for gz in (root / "MNIST" / "raw").glob("*.gz"):
            with gzip.open(gz) as src, open(gz.with_suffix(""), "wb") as dst:
                shutil.copyfileobj(src, dst)
    return root


def _missing_dataset(tmp: Path, mnist_gz: Path) -> tuple[list[str], str]:
    return ["data=mnist", f"data.root={tmp / 'nowhere'}"], str(tmp / "nowhere" / "MNIST" / "raw")


def _truncated_gz(tmp: Path, mnist_gz: Path) -> tuple[list[str], str]:
    root = _mnist_copy(mnist_gz, tmp, extract=False)
    _truncate(root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz")
    # named as damaged, not re-downloaded: data.download=false must never reach the network
    return ["data=mnist", f"data.root={root}"], f"{root / 'MNIST' / 'raw'} is damaged"


def _truncated_idx(tmp: Path, mnist_gz: Path) -> tuple[list[str], str]:
    root = _mnist_copy(mnist_gz, tmp, extract=True)
    _truncate(root / "MNIST" / "raw" / "train-images-idx3-ubyte")
    return ["data=mnist", f"data.root={root}"], str(root / "MNIST" / "raw")


def _unwritable_out(tmp: Path, mnist_gz: Path) -> tuple[list[str], str]:
    # tests run as root, which ignores permissions: a folder below a regular file cannot exist
    (tmp / "a-file").write_text("")
    return [f"out_dir={tmp / 'a-file' / 'sub'}"], str(tmp / "a-file" / "sub")


def _static(*overrides: str, says: str) -> Callable[[Path, Path], tuple[list[str], str]]:
    return lambda tmp, mnist_gz: (list(overrides), says)


BAD_INPUTS = {
    "unknown-model": _static("model=transformer", says="unknown model option 'transformer'"),
    "unknown-reg": _static("reg=[dropout,mixup]", says="unknown reg option 'mixup'"),
    "unknown-key": _static("trainer.epoch=3", says="unknown key 'trainer.epoch'"),
    "unknown-top-key": _static("lr=0.1", says="unknown key 'lr'"),
    "unknown-key-of-unselected": _static("reg.dropout.p=0.3", says="'reg.dropout'"),
    "epochs-not-int": _static("trainer.epochs=abc", says="'trainer.epochs'"),
    "bool-not-bool": _static("trainer.deterministic=maybe", says="'trainer.deterministic'"),
    "lr-negative": _static("optim.lr=-0.1", says="'optim.lr'"),
    "lr-zero": _static("optim=sgd", "optim.lr=0", says="'optim.lr'"),
    "lr-infinite": _static("optim.lr=inf", says="'optim.lr'"),
    "dropout-p-1": _static("reg=dropout", "reg.dropout.p=1.0", says="'reg.dropout.p'"),
    "dropout-p-negative": _static("reg=dropout", "reg.dropout.p=-0.1", says="'reg.dropout.p'"),
    "batch-size-0": _static("trainer.batch_size=0", says="'trainer.batch_size'"),
    "val-fraction-1": _static("data.val_fraction=1", says="'data.val_fraction'"),
    "val-fraction-1.5": _static("data.val_fraction=1.5", says="'data.val_fraction'"),
    "epochs-0": _static("trainer.epochs=0", says="'trainer.epochs'"),
    "bn-batch-of-1": _static("reg=bn", "trainer.batch_size=1", says="trainer.batch_size"),
    "val-split-empty": _static("data.val_fraction=0.0001", says="0 validation"),
    "one-train-example": _static("data.subset=1", says="1 training"),
    "no-reg": _static("reg=[]", says="reg=none"),
    "none-and-others": _static("reg=[none,l2]", says="reg=none"),
    "missing-group": _static("~trainer", says="'trainer'"),
    "bad-name": _static("name=../escape", says="'name'"),
    "dataset-missing": _missing_dataset,
    "dataset-truncated-gz": _truncated_gz,
    "dataset-truncated-idx": _truncated_idx,
    "out-dir-unwritable": _unwritable_out,
    # the existing run has another config (trainer.epochs=1): resume must not pick it
    "resume-other-config": _static("name=existing", "resume=true", says="nothing to resume"),
    "resume-nothing": _static("name=never-ran", "resume=true", says="nothing to resume"),
    # issue 12: what a new user hit
    "resume-names-the-difference": _static(
        "name=existing", "resume=true", says="existing differs in trainer.epochs (20 here, 1 there)"
    ),
    "epochs-bool": _static("trainer.epochs=true", says="'trainer.epochs' (True)"),
    "seed-bool": _static("seed=true", says="'seed' (True)"),
    "lr-bool": _static("optim.lr=false", says="'optim.lr' (False)"),
    "hidden-bool": _static("model.hidden=[true]", says="'model.hidden'"),
    "sweep-name-slash": _static("sweep_name=a/b", says="'sweep_name'"),
    "logger-unknown": _static("trainer.loggers=[wandb]", says="'trainer.loggers.0'"),
    # issue 14 and 11: the new trainer knobs
    "mc-dropout-negative": _static("trainer.mc_dropout=-1", says="'trainer.mc_dropout' (-1)"),
    "mc-dropout-bool": _static("trainer.mc_dropout=true", says="'trainer.mc_dropout' (True)"),
    "compile-not-bool": _static("trainer.compile=2", says="'trainer.compile' (2)"),
    "channels-last-not-bool": _static(
        "trainer.channels_last=yes", says="'trainer.channels_last' ('yes')"
    ),
    "user-model-missing": _static(
        "+model._target_=no_such_module.build", says="cannot import no_such_module"
    ),
}
NEEDS_MNIST = {"dataset-truncated-gz", "dataset-truncated-idx"}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_exit_2_nothing_changed(
    case: str,
    existing_out: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every bad input through `regbench train`, in this process (fast); the real process below."""
    mnist_gz = request.getfixturevalue("mnist_gz") if case in NEEDS_MNIST else tmp_path
    overrides, says = BAD_INPUTS[case](tmp_path, mnist_gz)
    before = tree_hashes(existing_out)
    monkeypatch.chdir(tmp_path)
    result = cli_inprocess(
        "train",
        "trainer.progress=none",
        f"out_dir={existing_out}",
        *overrides,
        monkeypatch=monkeypatch,
    )
    assert says in assert_one_line_error(*result)
    assert tree_hashes(existing_out) == before
    assert sorted(p.name for p in existing_out.iterdir()) == ["existing"]  # no new run folder
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) in ([], ["datasets"])


@pytest.mark.parametrize("case", ["epochs-not-int", "dataset-truncated-idx", "out-dir-unwritable"])
def test_bad_input_real_process(
    case: str, existing_out: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """As above through a real interpreter: nothing else (warnings, logging) reaches the terminal."""
    mnist_gz = request.getfixturevalue("mnist_gz") if case in NEEDS_MNIST else tmp_path
    overrides, says = BAD_INPUTS[case](tmp_path, mnist_gz)
    before = tree_hashes(existing_out)
    r = cli("train", "trainer.progress=none", f"out_dir={existing_out}", *overrides, cwd=tmp_path)
    assert says in assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert tree_hashes(existing_out) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_one_line(
    existing_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_hashes(existing_out)
    monkeypatch.chdir(tmp_path)
    result = cli_inprocess(
        "train", "trainer.device=cuda", f"out_dir={existing_out}", monkeypatch=monkeypatch
    )
    assert "CUDA is not available" in assert_one_line_error(*result)
    assert tree_hashes(existing_out) == before


@pytest.mark.skipif(not has_command("compare"), reason="`regbench compare` is not merged yet")
@pytest.mark.parametrize("where", ["empty", "missing"])
def test_compare_on_empty_or_missing_folder(where: str, existing_out: Path, tmp_path: Path) -> None:
    folder = tmp_path / where
    if where == "empty":
        folder.mkdir()
    before = tree_hashes(existing_out)
    r = cli("compare", str(folder), cwd=tmp_path)
    assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert tree_hashes(existing_out) == before


def test_same_name_other_config_gets_new_folder(tmp_path: Path) -> None:
    from regbench.solo import run

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
    with FileLock(run_dir / runs.LOCK):
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
    from regbench.solo import run

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
    assert "invalid sweep_name 'a/b'" in assert_one_line_error(r.returncode, r.stdout, r.stderr)
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
    from regbench.solo import run

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
    assert (run_dir / "config.yaml").read_text() == runs.config_yaml(cfg)
    s = summary(run_dir)
    assert s["status"] == "completed" and s["epochs_run"] == 1 and s["error"] is None
    assert s["tested"] == ("best" if "earlystop" in regs else "last")
    assert math.isfinite(s["test_acc"]) and result == s["best_val_acc"]
    (row,) = metrics_rows(run_dir)
    assert row["epoch"] == "1" and all(math.isfinite(float(v)) for v in row.values())
    assert runs.load_checkpoint(run_dir / "last.pt")["rows"][0]["epoch"] == 1
    assert set(runs.load_checkpoint(run_dir / "best.pt")["model"]) == set(
        runs.load_checkpoint(run_dir / "last.pt")["model"]
    )


def test_run_releases_its_folder_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In one process (a sweep's jobs, these tests) a finished run must not keep its folder locked."""
    from regbench.solo import run

    taken: list[FileLock] = []
    lock = runs.lock
    monkeypatch.setattr(runs, "lock", lambda run_dir: taken.append(lock(run_dir)) or taken[-1])
    overrides = [
        "trainer.epochs=1",
        "trainer.progress=none",
        "data.subset=128",
        f"out_dir={tmp_path}",
    ]
    run(make_cfg(*overrides))
    run(make_cfg(*overrides, "resume=true"))  # already finished: returns early
    assert len(taken) == 2 and not any(fl.is_locked for fl in taken)
    assert not runs.is_locked(next(tmp_path.iterdir()))
