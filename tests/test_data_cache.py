"""The decoded-archive cache: written once, atomically, keyed by the archives' md5."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from regbench import data
from regbench.config import ConfigError
from tests.conftest import make_cfg


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
