"""Outputs that cannot be written and inputs that do not fit are one line, exit 2, no traceback,
nothing written (issue 41, items 1, 2 and 6): --out checked before any work, a read-only or full
out_dir on every command that writes one, mismatched MNIST files, non-finite images and negative
labels in a user's dataset."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.conftest import SHARED, assert_one_line_error, cli

TINY = ["trainer.epochs=2", "trainer.progress=none"]


@contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A small file system of its own at path (root only; skipped where it cannot be mounted)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


@pytest.mark.parametrize(
    ("out", "says"),
    [
        ("picture.xyz", "'.xyz' is not a format matplotlib writes; end it with one of: .avif"),
        ("noext", "--out noext: has no format"),
        ("", "is not a file name"),
        ("afile.txt/x.png", "afile.txt is a file, not a folder"),
        ("sub", "'sub' is not a file name"),
    ],
)
def test_inspect_checks_out_before_any_work(out: str, says: str, tmp_path: Path) -> None:
    (tmp_path / "afile.txt").write_text("kept\n")
    (tmp_path / "sub").mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    r = cli("inspect", "--out", out, cwd=tmp_path)
    assert says in assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no .png, no hidden file


def test_compare_checks_its_out_folder_before_reading_runs(tmp_path: Path) -> None:
    (tmp_path / "afile.txt").write_text("kept\n")
    r = cli("compare", str(tmp_path), "--out", str(tmp_path / "afile.txt"))
    assert "is a file, not a folder" in assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert (tmp_path / "afile.txt").read_text() == "kept\n"


@pytest.mark.parametrize(
    "command",
    [
        ["train"],
        ["sweep", "reg=none,l2"],
        ["sweep", "reg=none,l2", "--until-decided", "--baseline", "reg=none", "--delta", "0.01"],
    ],
    ids=["train", "sweep", "staged"],
)
def test_a_read_only_out_dir_is_one_line(command: list[str], tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        r = cli(*command, *TINY, f"out_dir={ro / 'runs'}")
        line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
        assert "Read-only file system" in line and "out_dir" in line, line


def test_a_read_only_out_dir_names_the_folder_once_and_the_fix(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        r = cli("sweep", "reg=none,l2", *TINY, f"out_dir={ro / 'runs'}")
        line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
        assert line == (
            f"error: cannot write {ro / 'runs'} (Read-only file system); "
            "pass out_dir=<a writable folder with room>"
        )
        r = cli("train", *TINY, f"out_dir={ro / 'sub' / 'deeper'}")
        line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
        assert line == (
            f"error: cannot create output folder {ro / 'sub' / 'deeper'} (Read-only file system); "
            "pass out_dir=<a writable folder>"
        )


@pytest.mark.parametrize("option", ["--out-dir", "--ledger"])
def test_claims_run_checks_its_folders_before_any_run(option: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("kept\n")
    bad = tmp_path / "a-file" / "sub" / "ledger.md"  # cannot be made, even by root
    args = ["--out-dir", str(bad.parent)] if option == "--out-dir" else ["--ledger", str(bad)]
    r = cli("claims", "run", "init_zeros", "--out-dir", str(tmp_path / "out"), *args)
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert line.endswith(f"a-file is a file, not a folder; choose another {option}"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.parametrize("disk", ["read-only", "full"])
def test_claims_run_on_a_read_only_or_full_disk_is_one_line(disk: str, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs", "16k", read_only=disk == "read-only") as fs:
        if disk == "full":
            fill(fs)
        r = cli("claims", "run", "init_zeros", "--out-dir", str(fs / "claims"))
        line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
        says = "is not writable" if disk == "read-only" else "no space left on device"
        assert line.startswith(f"error: --out-dir {fs / 'claims'}: ") and says in line, line
        assert line.endswith("choose another --out-dir"), line


def fill(fs: Path) -> None:
    """Leave the file system at fs no free block."""
    with suppress(OSError), open(fs / "filler", "wb", buffering=0) as f:  # until ENOSPC
        while True:
            f.write(bytes(4096))


def test_compare_out_on_a_full_disk_is_one_line_naming_the_fix(
    known_sweep: Path, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "fs", "16k") as fs:  # room for a file or two, not the report
        r = cli("compare", str(known_sweep), "--out", str(fs / "rep"))
        line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
        assert line == (
            f"error: no space left on device in {fs / 'rep'}; free some space or choose another "
            "--out, then rerun"
        )
        assert r.stdout == ""  # said before the tables, not after them
        fill(fs)  # none left at all: said before any run is read
        r = cli("compare", str(tmp_path / "no-runs"), "--out", str(fs / "rep2"))
        line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
        assert line == (
            f"error: --out {fs / 'rep2'}: no space left on device in {fs}; free some space or "
            "choose another --out"
        )


@pytest.mark.parametrize("size", ["8k", "60k", "400k"])
def test_a_full_disk_during_train_is_the_same_one_line_whatever_is_left(
    size: str, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "full", size) as full:
        r = cli("train", *TINY, f"out_dir={full}")
        line = assert_one_line_error(
            r.returncode, "Traceback" * ("Traceback" in r.stdout), r.stderr
        )
        assert line.startswith(f"error: no space left on device in {full}; free some space"), line
        assert line.endswith(
            "; free some space or pass out_dir=<a writable folder with room>, then rerun"
        )


STAGED = ["reg=none,dropout", "--until-decided", "--baseline", "reg=none", "--stage", "2",
          "--budget", "2"]  # fmt: skip


@pytest.mark.parametrize("size", ["16k", "96k", "300k"])
@pytest.mark.parametrize("command", [["seed=0,1"], STAGED], ids=["sweep", "staged"])
def test_a_full_disk_during_a_sweep_is_the_one_line_train_gives(
    command: list[str], size: str, tmp_path: Path
) -> None:
    """Whatever is left (the index refreshed at the end, a job's files, its checkpoints): no
    traceback, none of Hydra's lines for the job, no second line without the folder, no table
    that says a run resumes from a last.pt it never wrote."""
    with tmpfs(tmp_path / "full", size) as full:
        r = cli("sweep", *command, "trainer.epochs=1", "trainer.progress=none", f"out_dir={full}")
        line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
        assert line.startswith(f"error: no space left on device in {full / 'sweeps'}/"), line
        assert line.endswith(
            "; free some space or pass out_dir=<a writable folder with room>, then rerun"
        )
        assert "last.pt" not in r.stdout, r.stdout


def test_a_run_stopped_by_a_full_disk_is_not_said_to_resume_from_a_last_pt(
    tmp_path: Path,
) -> None:
    args = ["sweep", "seed=0,1", "trainer.epochs=1", "trainer.progress=none"]
    with tmpfs(tmp_path / "full", "96k") as full:  # room for the run folder, none for last.pt
        assert cli(*args, f"out_dir={full}").returncode == 2
        (run,) = [p for p in full.glob("sweeps/*/*") if p.is_dir()]
        assert not (run / "last.pt").exists()
        r = cli(*args, f"out_dir={full}", "--dry-run")
        assert r.returncode == 0, r.stderr
        said = " ".join(r.stdout.split())  # the table folds its cells
        assert "interrupted" in said and "rerun the same sweep command to start it again" in said
        assert "last.pt" not in said, r.stdout


def test_mismatched_mnist_files_are_named(tmp_path: Path) -> None:
    src = SHARED / "MNIST" / "raw"
    if not (src / "train-labels-idx1-ubyte").is_file():
        pytest.skip(f"extracted MNIST files not present in {src}")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in src.glob("*-ubyte"):  # the extracted files only, as some copies of MNIST come
        shutil.copy(f, raw)
    train, test = raw / "train-labels-idx1-ubyte", raw / "t10k-labels-idx1-ubyte"
    train_bytes = train.read_bytes()
    train.write_bytes(test.read_bytes())  # the test labels in the training labels' place
    test.write_bytes(train_bytes)
    r = cli("train", "data=mnist", f"data.root={tmp_path}", *TINY, f"out_dir={tmp_path / 'out'}")
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert "the training files hold 60000 images but 10000 labels" in line, line
    assert not (tmp_path / "out").exists()


DATASET = """
import numpy as np
from sklearn.datasets import load_digits


def digits(spoil: str):
    d = load_digits()
    x, y = d.images.astype(np.float32), d.target.copy()
    if spoil == "nan":
        x[[3, 70], 2, 4] = np.nan
        x[70, 0, 0] = np.inf
    if spoil == "one-nan":
        x[3, 2, 4] = np.nan
    if spoil == "negative":
        y[[5, 9]] = -1
    if spoil == "one-negative":
        y[5] = -1
    if spoil == "gap":  # one label 99 among 0..9: 100 outputs, 90 of them never a label
        y[7] = 99
    if spoil == "one-based":
        y = y + 1
    return (x[:1500], y[:1500]), (x[1500:], y[1500:])
"""


@pytest.mark.parametrize(
    ("spoil", "says"),
    [
        ("nan", "training images hold 3 non-finite values (NaN or inf) in 2 of 1500 images (index 3, 70)"),
        ("one-nan", "training images hold 1 non-finite value (NaN or inf) in 1 of 1500 images (index 3); fix or drop it"),
        ("negative", "training labels must be class numbers 0..K-1; 2 are negative (smallest -1, index 5, 9)"),
        ("one-negative", "training labels must be class numbers 0..K-1; 1 is negative (smallest -1, index 5); map it"),
        ("gap", "labels skip 89 of the classes 0..99 (no label is 10, 11, 12, 13, 14, ...), so the model would have 100 outputs"),
        ("one-based", "labels skip 1 of the classes 0..10 (no label is 0)"),
    ],
)  # fmt: skip
def test_a_user_dataset_at_fault_is_named_before_training(
    spoil: str, says: str, tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    (conf / "data").mkdir(parents=True)
    (conf / "spoilt.py").write_text(DATASET)
    (conf / "data" / "spoilt.yaml").write_text(
        f"_target_: spoilt.digits\nname: spoilt\nspoil: {spoil}\nval_fraction: 0.1\n"
        "split_seed: 0\nsubset: null\nlabel_noise: 0.0\npreprocess: standardize\n"
    )
    out = tmp_path / "out"
    r = cli("--config-dir", str(conf), "train", "data=spoilt", *TINY, f"out_dir={out}")
    assert says in assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert not out.exists()
