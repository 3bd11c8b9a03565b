"""One optimisation step of K members (one for a solo run): the optimizer, the learning-rate
schedule, the penalties in the loss and the constraints that act on the weights directly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from regbench import models
from regbench.run import fuse


def make_optimizer(cfg: DictConfig, model: nn.Module, wide: bool = False) -> torch.optim.Optimizer:
    """The optimizer of conf/optim, in torch's one-kernel implementation (`fused=True`): one pass
    over memory where the default makes about ten, the same update up to rounding, and faster
    (benchmarks/throughput.py --only optimizer; benchmarks/RESULTS.md). RMSprop has no fused
    form: in a fused job (`wide`, K members' tensors) the multi-tensor one (`foreach=True`), for
    a solo run the default (foreach bought nothing there)."""
    if cfg.name in ("sgd", "momentum", "nesterov"):
        m = cfg.get("momentum", 0.0)
        return torch.optim.SGD(
            model.parameters(), cfg.lr, momentum=m, nesterov=cfg.name == "nesterov", fused=True
        )
    if cfg.name == "rmsprop":
        foreach = True if wide else None
        return torch.optim.RMSprop(
            model.parameters(), cfg.lr, alpha=cfg.alpha, eps=cfg.eps, foreach=foreach
        )
    if cfg.name == "adam":
        betas = tuple(cfg.betas)
        return torch.optim.Adam(model.parameters(), cfg.lr, betas=betas, eps=cfg.eps, fused=True)
    decay = {id(p) for p in models.decayed(model)}  # adamw: weights decay, biases and norms do not
    groups = [
        {
            "params": [p for p in model.parameters() if id(p) in decay],
            "weight_decay": cfg.weight_decay,
        },
        {"params": [p for p in model.parameters() if id(p) not in decay], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, fused=True)


def make_schedule(cfg: DictConfig, opt: torch.optim.Optimizer, total: int, per_epoch: int):
    """A per-batch learning-rate schedule over `total` batches (None: constant)."""
    if cfg.name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, cfg.step_epochs * per_epoch, cfg.gamma)
    if cfg.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, total, cfg.min_lr)
    if cfg.name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, cfg.max_lr, total, pct_start=cfg.pct_start)
    return None


@dataclass(frozen=True)
class Knobs:
    """The regularizer settings a step reads, as plain numbers: a config lookup would cost a
    noticeable share of a small model's step (benchmarks/RESULTS.md)."""

    l2: float = 0.0
    l1: float = 0.0
    wd: float = 0.0
    maxnorm: float | None = None
    smooth: float = 0.0
    noise: float = 0.0

    @classmethod
    def of(cls, reg: DictConfig) -> Knobs:
        return cls(
            l2=reg.l2.lam if "l2" in reg else 0.0,
            l1=reg.l1.lam if "l1" in reg else 0.0,
            wd=reg.wd.weight_decay if "wd" in reg else 0.0,
            maxnorm=reg.maxnorm.c if "maxnorm" in reg else None,
            smooth=reg.labelsmooth.eps if "labelsmooth" in reg else 0.0,
            noise=reg.weightnoise.sigma if "weightnoise" in reg else 0.0,
        )


def penalty(k: Knobs, weights: list[torch.Tensor], n_train: int) -> torch.Tensor | float:
    """L2: lam/(2N) sum w^2 and L1: lam/N sum |w| over conv/linear weights, N = training examples."""
    total: torch.Tensor | float = 0.0
    if k.l2:
        total = total + k.l2 / (2 * n_train) * sum((w.float() ** 2).sum() for w in weights)
    if k.l1:
        total = total + k.l1 / n_train * sum(w.float().abs().sum() for w in weights)
    return total


class Step:
    """One optimisation step: loss (+ penalties), backward, update, then the constraints that act
    on the weights directly (decoupled weight decay, max-norm) and the learning-rate schedule."""

    def __init__(self, cfg: DictConfig, model: nn.Module, n_train: int, per_epoch: int) -> None:
        self.k, self.n = Knobs.of(cfg.reg), n_train
        self.aux_weight = float(cfg.aux.get("weight", 0.0)) if "aux" in cfg else 0.0
        self.weights = models.decayed(model)
        # what the penalties, decay, max-norm and weight noise act on: not the frozen blocks' weights
        self.trained: list[torch.Tensor] = [w for w in self.weights if w.requires_grad]
        self.width = getattr(model, "k", 1)  # members fused into the model
        self.opt = make_optimizer(cfg.optim, model, wide=self.width > 1)
        total = cfg.trainer.epochs * per_epoch
        self.sched = make_schedule(cfg.sched, self.opt, total, per_epoch)

    @torch.no_grad()
    def perturb(self, gens: list[torch.Generator]) -> list[torch.Tensor] | None:
        """reg=weightnoise: add sigma * N(0, 1) to every conv/linear weight for the coming forward
        pass; return the clean weights, which __call__ puts back before the update (None: off).
        Member k's noise comes from its own generator gens[k] in its solo shape, so a fused
        member draws exactly what its solo run draws."""
        if not self.k.noise:
            return None
        clean = [w.clone() for w in self.trained]
        for w in self.trained:
            shape = (w.shape[0] // self.width, *w.shape[1:])  # a member's slice: dim 0
            draws = [torch.randn(shape, generator=g, device=w.device, dtype=w.dtype) for g in gens]
            w.add_(draws[0] if len(draws) == 1 else torch.cat(draws), alpha=self.k.noise)
        return clean

    def __call__(
        self,
        out: torch.Tensor,
        y: torch.Tensor,
        live: torch.Tensor,
        clean: list[torch.Tensor] | None = None,
        aux: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """out (K, B, classes), y (K, B), live (K,) bool; returns each member's mean loss. A fused
        job's loss is the sum of the live members' mean losses: each member's gradient is its solo
        gradient. A solo run takes the plain mean: the same gradient, bit for bit, in fewer ops
        (with label smoothing the plain mean rounds differently: it takes the general form).
        `clean`: perturb's clean weights, restored after the backward pass (the gradient is
        the noisy weights', the update the clean ones')."""
        k = self.k
        if len(y) == 1 and not k.smooth:
            loss = F.cross_entropy(out[0].float(), y[0])
            losses = loss.detach().view(1)
        else:
            losses = (
                F.cross_entropy(
                    out.flatten(0, 1).float(),
                    y.flatten(),
                    label_smoothing=k.smooth,
                    reduction="none",
                )
                .view(len(y), -1)
                .mean(1)
            )
            loss = losses @ live.to(losses.dtype)  # a stopped member's gradient is 0 (NaN or not)
        if aux is not None:  # aux=...: each member's auxiliary loss (K,), weighted by aux.weight
            loss = loss + self.aux_weight * (aux @ live.to(aux.dtype))
        if k.l2 or k.l1:
            loss = loss + penalty(k, self.trained, self.n)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if clean is not None:
            with torch.no_grad():
                for w, c in zip(self.trained, clean, strict=True):
                    w.copy_(c)
        self.opt.step()
        with torch.no_grad():
            if k.wd:  # decoupled: shrink weights directly, outside the gradient (AdamW-style)
                lr = self.opt.param_groups[0]["lr"]
                torch._foreach_mul_(self.trained, 1 - lr * k.wd)
            if k.maxnorm is not None:  # each unit's incoming weights (dim 0: a unit / filter)
                for w in self.trained:
                    w.copy_(torch.renorm(w, 2, 0, k.maxnorm))
        if self.sched is not None:
            self.sched.step()
        return losses.detach()

    def state_dict(self) -> dict[str, Any]:
        sched = self.sched.state_dict() if self.sched is not None else None
        return {"optimizer": self.opt.state_dict(), "schedule": sched}

    def members(self, ks: list[int]) -> list[dict[str, Any]]:
        """Members ks' optimizer and schedule states, as their solo runs' checkpoints hold them
        (one state_dict of the fused optimizer for all)."""
        state = self.state_dict()
        opt = state["optimizer"]
        return [state | {"optimizer": fuse.member_optimizer(opt, k, self.width)} for k in ks]

    def load(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(state["schedule"])
