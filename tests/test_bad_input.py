"""Bad input (issue 5): every mistake a user can make on the command line or on disk is one
`error:` line naming the problem and the fix, exit code 2, no traceback, and nothing changed in an
existing out_dir. The MNIST cases copy the originals first and skip without them."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.conftest import (
    assert_one_line_error,
    cli,
    cli_inprocess,
    tree_hashes,
    truncate,
)


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
    truncate(root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz")
    # named as damaged, not re-downloaded: data.download=false must never reach the network
    return ["data=mnist", f"data.root={root}"], f"{root / 'MNIST' / 'raw'} is damaged"


def _truncated_idx(tmp: Path, mnist_gz: Path) -> tuple[list[str], str]:
    root = _mnist_copy(mnist_gz, tmp, extract=True)
    truncate(root / "MNIST" / "raw" / "train-images-idx3-ubyte")
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
    "logger-unknown": _static("trainer.loggers=[wandb]", says="'trainer.loggers[0]'"),
    # issue 14 and 11: the new trainer knobs
    "mc-dropout-negative": _static("trainer.mc_dropout=-1", says="'trainer.mc_dropout' (-1)"),
    "mc-dropout-bool": _static("trainer.mc_dropout=true", says="'trainer.mc_dropout' (True)"),
    "compile-not-bool": _static("trainer.compile=2", says="'trainer.compile' (2)"),
    "channels-last-not-bool": _static(
        "trainer.channels_last=yes", says="'trainer.channels_last' ('yes')"
    ),
    # issue 38: the techniques the decks teach
    "weightnoise-negative": _static(
        "reg=weightnoise", "reg.weightnoise.sigma=-0.1", says="'reg.weightnoise.sigma' (-0.1)"
    ),
    # knobs typed by their conf/reg/ defaults (schema.knobs_model), not by a class of their own
    "l2-lam-negative": _static("reg=l2", "reg.l2.lam=-1", says="'reg.l2.lam' (-1)"),
    "wd-not-a-number": _static("reg=wd", "reg.wd.weight_decay=abc", says="'reg.wd.weight_decay'"),
    "l1-unknown-knob": _static("reg=l1", "+reg.l1.foo=1", says="unknown key 'reg.l1.foo'"),
    "none-takes-no-knob": _static("reg=none", "+reg.none.x=1", says="unknown key 'reg.none.x'"),
    "interpolation-missing": _static("seed=${oops}", says="'seed' cannot be resolved"),
    "name-not-ascii": _static("name=réseau", says="'name' ('réseau'): one plain folder name"),
    "whiten-eps-0": _static(
        "data.preprocess=zca", "data.whiten_eps=0", says="'data.whiten_eps' (0)"
    ),
    "preprocess-unknown": _static("data.preprocess=whiten", says="'data.preprocess'"),
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


@pytest.mark.parametrize("where", ["empty", "missing"])
def test_compare_on_empty_or_missing_folder(where: str, existing_out: Path, tmp_path: Path) -> None:
    folder = tmp_path / where
    if where == "empty":
        folder.mkdir()
    before = tree_hashes(existing_out)
    r = cli("compare", str(folder), cwd=tmp_path)
    assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert tree_hashes(existing_out) == before
