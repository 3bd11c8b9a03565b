"""What a model does on a split (loss, accuracy, calibration) and what training did to it
(weight norm, the epoch overfitting began): the per-run measurements that say what a regularizer changed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

ECE_BINS = 15


def calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Expected calibration error: sum over equal-width confidence bins of |B|/N |acc(B) - conf(B)|.

    probs: (N, classes) softmax outputs; labels: (N,). Confidence is the top probability; a bin
    (lo, hi] holds the predictions whose confidence falls in it (Guo et al. 2017).
    """
    conf, pred = probs.max(1)
    edges = torch.linspace(0, 1, bins + 1, device=probs.device, dtype=conf.dtype)
    which = torch.bucketize(conf, edges[1:-1], right=False)  # bin b: (edges[b], edges[b+1]]
    hits = (pred == labels).to(conf.dtype)
    count = torch.zeros(bins, device=probs.device, dtype=conf.dtype).index_add_(
        0, which, torch.ones_like(conf)
    )
    gap = torch.zeros_like(count).index_add_(0, which, hits - conf)  # sum(acc - conf) per bin
    return (gap.abs().sum() / len(labels)).item()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, bs: int, amp) -> torch.Tensor:
    """Logits (N, classes) in eval mode (dropout off, batch norm on running statistics)."""
    model.eval()
    logits = []
    for i in range(0, len(x), bs):
        with amp:
            logits.append(model(x[i : i + bs]).float())
    return torch.cat(logits)


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int, amp
) -> tuple[float, float, float]:
    """Mean cross-entropy, accuracy and ECE in eval mode."""
    return scores(predict(model, x, bs, amp), y)


DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def has_dropout(model: nn.Module) -> bool:
    return any(isinstance(m, DROPOUT) and m.p > 0 for m in model.modules())


@torch.no_grad()
def mc_dropout(
    model: nn.Module, x: torch.Tensor, bs: int, amp, passes: int, seed: int
) -> torch.Tensor:
    """Monte-Carlo dropout (Gal & Ghahramani 2016): log of the mean softmax over `passes` forward
    passes with dropout on and batch norm on its running statistics, (N, classes).

    The masks come from torch's global generator seeded with `seed` inside a fork of it, so the
    generator (a fused job's other members' dropout stream) is left exactly as it was.
    """
    model.eval()
    for m in model.modules():
        if isinstance(m, DROPOUT):
            m.train()
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        log_probs = []
        for _ in range(passes):
            out = []
            for i in range(0, len(x), bs):
                with amp:
                    out.append(model(x[i : i + bs]).float().log_softmax(1))
            log_probs.append(torch.cat(out))
    model.eval()
    return torch.logsumexp(torch.stack(log_probs), 0) - math.log(passes)


def scores(out: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """Mean cross-entropy, accuracy and ECE of logits `out` (N, classes) for labels y (log
    probabilities are logits too: their softmax is the probabilities)."""
    loss = F.cross_entropy(out, y).item()
    acc = (out.argmax(1) == y).sum().item() / len(y)
    return loss, acc, calibration_error(out.softmax(1), y)


@torch.no_grad()
def weight_norm(weights: Sequence[torch.Tensor]) -> float:
    """L2 norm of the conv/linear weights taken together: sqrt(sum of w^2)."""
    total = sum((w.float() ** 2).sum() for w in weights)  # a tensor: weights are never empty
    return torch.sqrt(cast(torch.Tensor, total)).item()


# a weight this close to 0 counts as zero (near_zero_weights): L1's subgradient steps keep a weight
# it has zeroed jittering within lr * lam of 0 (1e-5 at the decks' settings), far below this, while
# the weights of an unpenalized net on these datasets are spread over about ±0.1
NEAR_ZERO = 1e-3


@torch.no_grad()
def near_zero_share(weights: Sequence[torch.Tensor]) -> float:
    """The share of the conv/linear weights' entries within NEAR_ZERO of 0 (L1's sparsity)."""
    small = sum(int((w.abs() < NEAR_ZERO).sum()) for w in weights)
    return small / sum(w.numel() for w in weights)


def epochs_to(val_accs: Sequence[float], target: float) -> int | None:
    """The first epoch (1-based) whose validation accuracy reaches `target`; None if none does
    (censored at the run's end: summary.json's epochs_to_target is null)."""
    return next((e for e, acc in enumerate(val_accs, 1) if acc >= target), None)


def overfit_epoch(val_losses: Sequence[float], threshold: float = 5.0) -> int | None:
    """Prechelt's GL criterion: the first epoch (1-based) whose validation loss exceeds the lowest
    so far by more than `threshold` percent (GL5); None if it never does."""
    lowest = float("inf")
    for epoch, loss in enumerate(val_losses, 1):
        lowest = min(lowest, loss)
        if 100 * (loss / lowest - 1) > threshold:
            return epoch
    return None
