"""Outputs that cannot be written and inputs that do not fit are one line, exit 2, no traceback,
nothing written (issue 41, items 1, 2 and 6): --out checked before any work, a read-only or full
out_dir on every command that writes one, mismatched MNIST files, non-finite images and negative
labels in a user's dataset."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
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


def test_a_full_disk_during_a_sweep_is_one_line(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "full", "300k") as full:
        r = cli("sweep", "reg=none,l2", *TINY, f"out_dir={full}")
        assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr, r.stderr
        assert r.stderr.splitlines()[-1].startswith("error: no space left on device"), r.stderr


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
