"""data.classes and transfer=finetune / frozen (issue 38): class subsets, loading another run's
weights, freezing blocks, the source recorded, pairing by seed, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from regbench import data, models
from regbench.config import ConfigError
from regbench.run import checkpoint
from regbench.run.job import run
from tests.conftest import assert_one_line_error, cli, cli_inprocess, make_cfg, summary

CPU = torch.device("cpu")
SMALL = ["trainer.progress=none", "trainer.epochs=2", "model.hidden=[32,16]"]
A, B = "data.classes=[0,1,2,3,4]", "data.classes=[5,6,7,8,9]"


def test_class_subsets_remap_labels_and_split_the_test_set_between_them() -> None:
    full = data.load(make_cfg().data, CPU)
    a, b = (data.load(make_cfg(c).data, CPU) for c in (A, B))
    assert a.num_classes == b.num_classes == 5
    for d in (a, b):
        assert set(d.y_train.tolist()) == set(d.y_test.tolist()) == set(range(5))
    assert len(a.y_test) + len(b.y_test) == len(full.y_test)  # the same carve, then the classes
    assert (full.y_test >= 5).sum() == len(b.y_test)
    odd = data.load(make_cfg("data.classes=[7,1]").data, CPU)  # remapped in the order listed
    assert odd.num_classes == 2 and set(odd.y_test.tolist()) == {0, 1}
    assert (odd.y_test == 0).sum() == (full.y_test == 7).sum()


@pytest.mark.parametrize(
    ("classes", "says"),
    [("[3,12]", "names [12]"), ("[2,2]", "names a class twice"), ("[]", "'data.classes'")],
)
def test_bad_class_subsets_are_one_line(
    classes: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli_inprocess("train", f"data.classes={classes}", f"out_dir={tmp_path / 'o'}", monkeypatch=monkeypatch)  # fmt: skip
    assert says in assert_one_line_error(*r)
    assert not (tmp_path / "o").exists()


def weights(run_dir: Path, ck: str = "last.pt") -> dict[str, torch.Tensor]:
    return checkpoint.load(run_dir / ck)["model"]


def test_frozen_transfer_keeps_the_first_block_and_starts_the_classifier_afresh(
    tmp_path: Path,
) -> None:
    run(make_cfg(*SMALL, A, f"out_dir={tmp_path}", "name=source"))
    src = tmp_path / "source"
    common = [*SMALL, B, f"transfer.source={src}", f"out_dir={tmp_path}"]
    run(make_cfg(*common, "transfer=frozen", "name=frozen"))
    run(make_cfg(*common, "transfer=finetune", "name=finetune"))
    run(make_cfg(*SMALL, B, f"out_dir={tmp_path}", "name=scratch"))
    s, f, t, o = (weights(tmp_path / n) for n in ("source", "frozen", "finetune", "scratch"))
    first, second, last = "1.weight", "3.weight", "5.weight"
    assert [k for k in s if k.endswith("weight")] == [first, second, last]
    assert torch.equal(f[first], s[first]) and torch.equal(f["1.bias"], s["1.bias"])
    assert not torch.equal(f[second], s[second])  # trained on B
    assert not torch.equal(t[first], s[first])  # fine-tuned: every block trains
    # the classifier: B's classes are not A's, so it starts from the run's own initial weights
    init = models.build(make_cfg(*SMALL, B), (1, 8, 8), 5).state_dict()
    assert not torch.equal(f[last], s[last]) and not torch.equal(init[last], s[last])
    assert not torch.equal(o[first], s[first])  # scratch: its own weights
    rec = summary(tmp_path / "frozen")
    assert rec["transfer_source"] == str(src) and rec["transfer_layers_loaded"] == 2
    assert len(rec["transfer_source_config_hash"]) == 16
    assert "source: " + str(src) in (tmp_path / "frozen" / "config.yaml").read_text()
    # the same task (A again): the classifier is loaded too
    run(make_cfg(*SMALL, A, f"transfer.source={src}", "transfer=finetune", f"out_dir={tmp_path}", "name=same"))  # fmt: skip
    assert summary(tmp_path / "same")["transfer_layers_loaded"] == 3


def test_a_fused_transfer_member_starts_from_its_own_seeds_source(tmp_path: Path) -> None:
    run(make_cfg(*SMALL, A, "seed=[0,1]", f"out_dir={tmp_path / 'src'}"))
    common = [*SMALL, B, "transfer=frozen", f"transfer.source={tmp_path / 'src'}", "optim=sgd"]
    run(make_cfg(*common, "seed=[0,1]", "trainer.fuse=2", f"out_dir={tmp_path / 'fused'}"))
    for s in (0, 1):
        target = next((tmp_path / "fused").glob(f"*-s{s}*"))
        source = tmp_path / "src" / f"mlp-none-adam-s{s}"
        assert summary(target)["transfer_source"] == str(source)
        assert torch.equal(weights(target)["1.weight"], weights(source)["1.weight"])


def test_the_transfer_study_is_one_command_paired_by_seed_and_resumes(tmp_path: Path) -> None:
    args = ["sweep", "study=transfer", f"out_dir={tmp_path}", "seed=0,1", "data.subset=300", *SMALL]
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (targets,) = [p for p in (tmp_path / "sweeps").iterdir() if not p.name.endswith("-source")]
    sources = targets.with_name(targets.name + "-source")  # transfer-<hash>: SMALL changes results
    assert sorted(p.name for p in sources.iterdir() if p.is_dir()) == ["mlp-none-adam-s0", "mlp-none-adam-s1"]  # fmt: skip
    runs = [p for p in targets.iterdir() if (p / "summary.json").is_file()]
    assert len(runs) == 6 and all(summary(p)["status"] == "completed" for p in runs)
    n_test = len(data.load(make_cfg(B, "data.stratify=true").data, CPU).y_test)
    for p in runs:
        s = summary(p)
        assert s["n_test"] == n_test  # digits 5-9's part of the test split: compare's noise floor
        if "transfer=" not in p.name:  # from scratch: transfer=none, not named
            assert "transfer_source" not in s
        else:
            assert s["transfer_source"] == str(sources / f"mlp-none-adam-s{s['seed']}")
    again = cli(*args, cwd=tmp_path)  # a rerun: every run already done, nothing trained
    assert again.returncode == 0 and "epoch" not in again.stdout, again.stdout


def saved(path: Path, state: dict[str, torch.Tensor]) -> Path:
    torch.save({"model": state}, path)
    return path


def bad_sources(tmp: Path) -> dict[str, tuple[list[str], str]]:
    unfinished = tmp / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("seed: 0\n")
    (unfinished / "summary.json").write_text('{"status": "running"}\n')
    diverged = tmp / "diverged"
    diverged.mkdir()
    (diverged / "config.yaml").write_text("seed: 0\n")
    (diverged / "summary.json").write_text('{"status": "diverged"}\n')
    mlp = models.build(make_cfg(*SMALL), (1, 8, 8), 10).state_dict()
    return {
        "missing": ([f"transfer.source={tmp / 'nowhere'}"], "does not exist"),
        "unfinished": ([f"transfer.source={unfinished}"], "is running, not finished"),
        "diverged": ([f"transfer.source={diverged}"], "is diverged: no weights to start from"),
        "no-layer": (
            [f"transfer.source={saved(tmp / 'x.pt', {'foo': torch.ones(2, 2)})}"],
            "no layer",
        ),  # fmt: skip
        "no-seed": ([f"transfer.source={tmp}", "seed=3"], "no run of seed 3"),
        "freeze-too-many": (
            [f"transfer.source={saved(tmp / 'm.pt', mlp)}", "transfer.freeze=3"],
            "has 2 blocks",
        ),  # fmt: skip
        "source-without-transfer": (["transfer=none", "transfer.source=x"], "transfer"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "unfinished",
        "diverged",
        "no-layer",
        "no-seed",
        "freeze-too-many",
        "source-without-transfer",
    ],
)
def test_bad_transfer_is_one_line_and_writes_nothing(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    overrides, says = bad_sources(src)[case]
    monkeypatch.chdir(tmp_path)
    arm = [] if case == "source-without-transfer" else ["transfer=finetune"]
    r = cli_inprocess("train", *SMALL, *arm, *overrides, f"out_dir={tmp_path / 'o'}", monkeypatch=monkeypatch)  # fmt: skip
    assert says in assert_one_line_error(*r)
    assert not (tmp_path / "o").exists()


def test_classes_not_in_the_data_fail_before_loading_weights() -> None:
    with pytest.raises(ConfigError, match="names \\[10\\]"):
        data.select_classes(np.zeros((3, 1, 2, 2)), np.array([0, 1, 2]), [10], "x")


def test_a_conv_net_transfers_and_freezes_its_first_conv_block(tmp_path: Path) -> None:
    cnn = ["model=cnn", "model.channels=[4,8]", "model.hidden=16", "reg=bn", *SMALL[:2]]
    run(make_cfg(*cnn, A, f"out_dir={tmp_path}", "name=source"))
    src = tmp_path / "source"
    run(make_cfg(*cnn, B, "transfer=frozen", f"transfer.source={src}", f"out_dir={tmp_path}", "name=t"))  # fmt: skip
    s, t = weights(src), weights(tmp_path / "t")
    convs = [k for k, v in s.items() if v.ndim == 4]
    assert torch.equal(t[convs[0]], s[convs[0]]) and not torch.equal(t[convs[1]], s[convs[1]])
    assert summary(tmp_path / "t")["transfer_layers_loaded"] == 3  # two convs and the hidden layer
