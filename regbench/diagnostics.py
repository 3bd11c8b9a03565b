"""What a model does on a split (loss, accuracy, calibration) and what training did to it
(weight norm, the epoch overfitting began): the per-run measurements that say what a regularizer changed."""

from __future__ import annotations

from collections.abc import Sequence

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
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int, amp
) -> tuple[float, float, float]:
    """Mean cross-entropy, accuracy and ECE in eval mode (dropout off, batch norm on running stats)."""
    model.eval()
    logits = []
    for i in range(0, len(x), bs):
        with amp:
            logits.append(model(x[i : i + bs]).float())
    return scores(torch.cat(logits), y)


def scores(out: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """Mean cross-entropy, accuracy and ECE of logits `out` (N, classes) for labels y."""
    loss = F.cross_entropy(out, y).item()
    acc = (out.argmax(1) == y).sum().item() / len(y)
    return loss, acc, calibration_error(out.softmax(1), y)


@torch.no_grad()
def weight_norm(weights: Sequence[torch.Tensor]) -> float:
    """L2 norm of the conv/linear weights taken together: sqrt(sum of w^2)."""
    return torch.sqrt(sum((w.float() ** 2).sum() for w in weights)).item()


def overfit_epoch(val_losses: Sequence[float], threshold: float = 5.0) -> int | None:
    """Prechelt's GL criterion: the first epoch (1-based) whose validation loss exceeds the lowest
    so far by more than `threshold` percent (GL5); None if it never does."""
    lowest = float("inf")
    for epoch, loss in enumerate(val_losses, 1):
        lowest = min(lowest, loss)
        if 100 * (loss / lowest - 1) > threshold:
            return epoch
    return None
