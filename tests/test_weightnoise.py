"""reg=weightnoise (issue 38): Gaussian noise on the weights for each training forward pass, not
kept, on its own stream. The fused member = solo run check is test_fuse's DETERMINISTIC table,
the resume check test_resume's RESUMABLE run."""

from __future__ import annotations

from pathlib import Path

import torch

from regbench import models
from regbench.run.job import run
from regbench.run.step import Step
from regbench.run.streams import Streams
from tests.conftest import make_cfg, summary

COMMON = [
    "trainer.progress=none",
    "trainer.epochs=3",
    "data.subset=400",
    "model.hidden=[32]",
    "seed=[0,1,2]",
]


def test_tiny_sigma_pairs_with_none_and_a_useful_sigma_changes_the_result(tmp_path: Path) -> None:
    """sigma=1e-8 leaves every seed's test accuracy that of reg=none (its own stream: batches,
    initial weights and the other draws are the baseline's); sigma=0.05 moves it."""
    accs = {}
    for sigma in ("none", "1e-8", "0.05"):
        reg = ["reg=none"] if sigma == "none" else ["reg=weightnoise", f"reg.weightnoise.sigma={sigma}"]  # fmt: skip
        out = tmp_path / sigma
        run(make_cfg(*COMMON, *reg, f"out_dir={out}"))
        accs[sigma] = [summary(d)["test_acc"] for d in sorted(out.iterdir())]
    assert len(accs["none"]) == 3
    assert accs["1e-8"] == accs["none"]
    assert accs["0.05"] != accs["none"]


def test_the_update_applies_to_the_clean_weights_and_eval_sees_no_noise() -> None:
    """With lr -> 0 the step changes nothing: the noise is taken off before the update; and the
    perturbed forward pass differs from the clean (evaluation) one."""
    cfg = make_cfg("reg=weightnoise", "reg.weightnoise.sigma=0.1", "optim=sgd", "optim.lr=1e-30")
    model = models.build(cfg, (1, 8, 8), 10)
    step = Step(cfg, model, n_train=100, per_epoch=1)
    before = [w.detach().clone() for w in step.weights]
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    clean_out = model(x)
    gen = Streams(cfg, torch.device("cpu")).noise
    clean = step.perturb([gen])
    assert clean is not None
    noisy_out = model(x)
    assert not torch.equal(noisy_out, clean_out)
    step(noisy_out.unsqueeze(0), y.unsqueeze(0), torch.ones(1, dtype=torch.bool), clean)
    assert all(torch.equal(a, b) for a, b in zip(before, step.weights, strict=True))
    assert torch.equal(model(x), clean_out)


def test_each_step_draws_fresh_noise_from_the_runs_own_stream() -> None:
    cfg = make_cfg("reg=weightnoise", "seed=3")
    model = models.build(cfg, (1, 8, 8), 10)
    step = Step(cfg, model, n_train=100, per_epoch=1)
    gen = Streams(cfg, torch.device("cpu")).noise
    w = step.weights[0]
    draws = []
    for _ in range(2):
        clean = step.perturb([gen])
        assert clean is not None
        draws.append(w.detach() - clean[0])
        with torch.no_grad():
            w.copy_(clean[0])
    assert not torch.equal(draws[0], draws[1])
    assert 0.04 < draws[0].std().item() < 0.06  # sigma = 0.05, the default
    again = Streams(cfg, torch.device("cpu")).noise  # the same seed: the same draws
    assert torch.allclose(torch.randn(w.shape, generator=again) * 0.05, draws[0], atol=1e-7)
