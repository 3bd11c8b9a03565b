"""K runs that differ only in `seed`, trained as one model K members wide (HFTA: Wang et al. 2021).

The K solo models are built as usual (models.build: member k's initial weights are exactly those of
the solo run with its seed) and converted: every parameter and buffer of the fused model is the
members' tensors concatenated along dim 0, under the solo model's own names. So member k's part of
any tensor, weights and optimizer state alike, is `t.chunk(K)[k]`: a checkpoint in solo form is a
slice, and a fused model is rebuilt from solo checkpoints by concatenation.

Layouts: images (B, K*C, H, W), member k's channels at [k*C, (k+1)*C); features (K, F, B), the
batch last, so that every matmul of the forward and backward pass reads and writes contiguous
tensors (with (K, B, F) the weights' gradients come out transposed and are copied every step:
benchmarks/RESULTS.md). Conv2d -> grouped Conv2d (groups =
K x groups), BatchNorm2d(C) -> BatchNorm2d(K*C) (per-member statistics), Linear -> a batched
matmul, BatchNorm1d -> BatchNorm1d(K*F) over (1, K*F, B), Flatten turns (B, K*C, H, W) into
(K, C*H*W, B); the fused model's output is (K, B, classes). Modules without parameters
(activations, pools, dropout, Identity) act elementwise or per channel and are kept as they are;
containers (Sequential, resnet's BasicBlock) are converted child by child.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from regbench.diagnostics import scores
from regbench.run.streams import Streams


# ---- the fused modules --------------------------------------------------------------------------
class FusedLinear(nn.Module):
    """K linear layers as one batched matmul, (K, in, B) -> (K, out, B). The weight is stored
    (K*out, in), not (K, out, in): every tensor then splits along dim 0, and its rows are still
    units, so max-norm renorms each member's unit and decay, penalties and norms treat it as the
    2-d weight it is."""

    def __init__(self, k: int, n_in: int, n_out: int, bias: bool) -> None:
        super().__init__()
        self.k = k
        self.weight = nn.Parameter(torch.empty(k * n_out, n_in))
        self.bias = nn.Parameter(torch.empty(k * n_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.view(self.k, -1, self.weight.shape[1])
        if self.bias is None:
            return torch.bmm(w, x)
        return torch.baddbmm(self.bias.view(self.k, -1, 1), w, x)


class FusedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d(K*F) applied to (K, F, B) as (1, K*F, B): each member's features keep their own
    statistics, over the batch (B values per feature, as a solo run's (B, F))."""

    def __init__(self, k: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, f, b = x.shape
        return super().forward(x.reshape(1, k * f, b)).view(k, f, b)


class FusedFlatten(nn.Module):
    """(B, K*C, H, W) -> (K, C*H*W, B): each member's flattening, as nn.Flatten orders it."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.k, -1).permute(1, 2, 0).contiguous()


def _conv(m: nn.Conv2d, k: int) -> nn.Module:
    return nn.Conv2d(
        k * m.in_channels,
        k * m.out_channels,
        cast(tuple[int, int], m.kernel_size),  # a Conv2d's are pairs (the stubs: any tuple)
        cast(tuple[int, int], m.stride),
        cast("str | tuple[int, int]", m.padding),
        cast(tuple[int, int], m.dilation),
        k * m.groups,
        m.bias is not None,
        m.padding_mode,
    )


def _bn2d(m: nn.BatchNorm2d, k: int) -> nn.Module:
    return nn.BatchNorm2d(k * m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)


def _bn1d(m: nn.BatchNorm1d, k: int) -> nn.Module:
    return FusedBatchNorm1d(
        k, k * m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats
    )


def _flatten(m: nn.Flatten, k: int) -> nn.Module:
    if (m.start_dim, m.end_dim) != (1, -1):
        raise TypeError(f"cannot fuse Flatten({m.start_dim}, {m.end_dim})")
    return FusedFlatten(k)


CONVERT: dict[type, Callable[[Any, int], nn.Module]] = {
    nn.Conv2d: _conv,
    nn.BatchNorm2d: _bn2d,
    nn.BatchNorm1d: _bn1d,
    nn.Linear: lambda m, k: FusedLinear(k, m.in_features, m.out_features, m.bias is not None),
    nn.Flatten: _flatten,
}


def _convert(m: nn.Module, k: int) -> nn.Module:
    """The K-wide counterpart of `m` (shapes only: the weights are loaded afterwards)."""
    if type(m) in CONVERT:
        return CONVERT[type(m)](m, k)
    if any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(False)):
        raise TypeError(f"cannot fuse {type(m).__name__}: it has parameters and no fused form")
    out = copy.copy(m)  # parameter-free (activations, pools, dropout) or a container
    out._modules = {name: _convert(child, k) for name, child in m.named_children()}
    return out


def fuse_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Solo state dicts -> the fused one: tensors concatenated along dim 0, scalars (batch norm's
    num_batches_tracked, equal in a lock-step job) taken from the first member."""
    return {
        key: torch.cat([s[key] for s in states]) if v.ndim else v.clone()
        for key, v in states[0].items()
    }


def member_state(state: dict[str, Any], k: int, n: int) -> dict[str, Any]:
    """Member k's part of a fused state dict (n members), as a solo model's state dict. Cloned:
    a saved view would carry the whole fused storage into the checkpoint."""
    return {
        key: v.chunk(n)[k].clone() if isinstance(v, torch.Tensor) and v.ndim else v
        for key, v in state.items()
    }


class Fused(nn.Module):
    """K members as one module: (B, K*C, H, W) -> (K, B, classes). With one member the module is
    the solo model itself, untouched, so a solo run keeps its exact arithmetic."""

    def __init__(self, solos: list[nn.Module]) -> None:
        super().__init__()
        self.k = len(solos)
        if self.k == 1:
            self.net = solos[0]
        else:
            self.net = _convert(solos[0], self.k)
            self.net.load_state_dict(fuse_states([s.state_dict() for s in solos]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out.unsqueeze(0) if self.k == 1 else out.transpose(1, 2)

    def aux_output(self) -> torch.Tensor:
        """The auxiliary head's output of the last forward pass, (K, B, A) (multitask.py)."""
        a = self.net.aux_out
        assert isinstance(a, torch.Tensor)  # multitask.WithAux keeps it as a plain attribute
        return a.unsqueeze(0) if self.k == 1 else a.transpose(1, 2)

    def member(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights as a solo model's state_dict (loads into models.build's model)."""
        return member_state(self.net.state_dict(), k, self.k)

    def members(self, ks: list[int]) -> list[dict[str, torch.Tensor]]:
        """Members ks' weights, from one state_dict of the fused model."""
        state = self.net.state_dict()
        return [member_state(state, k, self.k) for k in ks]

    def widen(self, x: torch.Tensor) -> torch.Tensor:
        """One batch for every member: (B, C, H, W) -> (B, K*C, H, W)."""
        return x if self.k == 1 else x.repeat(1, self.k, 1, 1)


# ---- optimizer state: the same slicing -----------------------------------------------------------
def member_optimizer(state: dict[str, Any], k: int, n: int) -> dict[str, Any]:
    """Member k's part of a fused optimizer's state_dict, in solo form (param_groups unchanged:
    same parameters in the same order; per-parameter scalars such as Adam's step are shared)."""
    per_param = {i: member_state(s, k, n) for i, s in state["state"].items()}
    return {"state": per_param, "param_groups": copy.deepcopy(state["param_groups"])}


def fuse_optimizers(states: list[dict[str, Any]]) -> dict[str, Any]:
    """Solo optimizer state_dicts -> the fused optimizer's (the inverse of member_optimizer)."""
    per_param = {}
    for i, first in states[0]["state"].items():
        per_param[i] = {
            key: torch.cat([s["state"][i][key] for s in states])
            if isinstance(v, torch.Tensor) and v.ndim
            else v
            for key, v in first.items()
        }
    return {"state": per_param, "param_groups": states[0]["param_groups"]}


# ---- what the loop needs besides the model ------------------------------------------------------
def start_dropout(rngs: list[Streams]) -> None:
    """Seed torch's global generator for dropout masks. A solo run: its own dropout stream. A fused
    job draws every member's masks from it at once (one tensor K members wide), seeded by all the
    members' dropout seeds: each member gets its own, independent masks, reproducibly."""
    if len(rngs) == 1:
        rngs[0].start_dropout()
    else:
        ss = np.random.SeedSequence([r.dropout_seed for r in rngs])
        torch.manual_seed(int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1)))


@torch.no_grad()
def evaluate(
    model: Fused, x: torch.Tensor, y: torch.Tensor, bs: int, amp
) -> list[tuple[float, float, float]]:
    """Every member's loss, accuracy and ECE on (x, y), in eval mode, in one pass per batch."""
    model.eval()
    logits = []
    for i in range(0, len(x), bs):
        with amp:
            logits.append(model(model.widen(x[i : i + bs])).float())
    out = torch.cat(logits, 1)
    return [scores(o, y) for o in out]
