"""The decoded-archive cache: written once, atomically, keyed by the archives' md5."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from regbench import data
from regbench.config import ConfigError
from tests.conftest import assert_one_line_error, cli, make_cfg, summary


def test_decoded_mnist_is_cached_and_a_changed_archive_is_decoded_afresh(
    mnist_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = tmp_path / "data"  # its own copy: an archive gets damaged below
    shutil.copytree(mnist_root / "MNIST" / "raw", root / "MNIST" / "raw")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    cfg = make_cfg("data=mnist", f"data.root={root}").data
    first = data.load(cfg, torch.device("cpu"))
    cache = sorted(p.name for p in (root / ".regbench-cache").iterdir())
    assert len(cache) == 2 and cache[0].startswith("mnist-test-")  # no temporary file left

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded the archives although a cache was there")

    monkeypatch.setattr(data, "_decode", no_decoding)
    again = data.load(cfg, torch.device("cpu"))
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_test, again.y_test)

    archive = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:-10])  # damaged: another md5, no cache fits it
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="damaged"):
        data.load(cfg, torch.device("cpu"))


def test_a_changed_extracted_file_is_one_line_and_a_restored_one_is_used_again(
    mnist_root: Path, tmp_path: Path
) -> None:
    """torchvision reads the extracted idx files, not the .gz: those are checked and key the cache
    (issue 40: a label file shifted by one trained to test_acc 0.0098 from a stale cache)."""
    root = tmp_path / "data"
    shutil.copytree(mnist_root / "MNIST" / "raw", root / "MNIST" / "raw")
    labels = root / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.chmod(0o644)
    clean = labels.read_bytes()
    args = ["train", "data=mnist", f"data.root={root}", "data.subset=500", "trainer.epochs=1",
            "trainer.progress=none", "model.hidden=[32]"]  # fmt: skip
    first = cli(*args, f"out_dir={tmp_path / 'a'}")
    assert first.returncode == 0, first.stderr
    cached = sorted((root / ".regbench-cache").iterdir())
    labels.write_bytes(clean[:8] + clean[9:] + clean[8:9])  # the labels shifted by one
    r = cli(*args, f"out_dir={tmp_path / 'b'}")
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert "train-labels-idx1-ubyte: not what its .gz holds" in line and "delete" in line
    assert not (tmp_path / "b").exists()
    labels.write_bytes(clean)  # restored: the decoded copy made from it fits again
    again = cli(*args, f"out_dir={tmp_path / 'c'}")
    assert again.returncode == 0, again.stderr
    assert sorted((root / ".regbench-cache").iterdir()) == cached
    (a,), (c,) = (tmp_path / "a").iterdir(), (tmp_path / "c").iterdir()
    assert summary(a)["test_acc"] == summary(c)["test_acc"] > 0.5
