"""aux=parity / gt4 / coarse / reconstruct: multi-task learning (Caruana 1997), an auxiliary head on
the shared trunk, the input of the classifier. The auxiliary targets come from the data itself,
so every run works offline; the main task's metrics stay the ones compared."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

if TYPE_CHECKING:
    from regbench.run.fuse import Fused

# Fashion-MNIST's classes -> tops (t-shirt, pullover, coat, shirt), trousers and dresses, shoes, bags
COARSE = (0, 1, 0, 1, 0, 2, 0, 2, 3, 2)
CLASSES = {"parity": 2, "gt4": 2, "coarse": 4}  # reconstruct: the image's values
DECODER = 64  # reconstruct: the decoder's hidden width


class WithAux(nn.Sequential):
    """The model's layers under their own names (checkpoints load into the plain model, a
    transfer source's layers match), then `aux`: the classifier and the auxiliary head both read
    the trunk's output; the auxiliary output of the last pass is kept in `aux_out`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *trunk, head, aux = self._modules.values()
        for m in trunk:
            x = m(x)
        self.aux_out = aux(x)
        return head(x)


def attach(model: nn.Module, cfg: DictConfig, shape: tuple[int, int, int]) -> nn.Module:
    """The model with aux's head appended (built before the initialisation: its layers draw from
    the init stream after the main ones, whose weights stay those of the run without it)."""
    name = cfg.aux.name
    if name == "none":
        return model
    assert isinstance(model, nn.Sequential) and isinstance(model[-1], nn.Linear)
    features = model[-1].in_features
    if name == "reconstruct":
        pixels = shape[0] * shape[1] * shape[2]
        head: nn.Module = nn.Sequential(
            nn.Linear(features, DECODER), nn.ReLU(), nn.Linear(DECODER, pixels)
        )
    else:
        head = nn.Linear(features, CLASSES[name])
    return WithAux(OrderedDict([*model.named_children(), ("aux", head)]))


def targets(cfg: DictConfig, y: torch.Tensor) -> torch.Tensor:
    """The auxiliary labels of the (remapped) main labels y: from the dataset's own classes."""
    if cfg.data.get("classes") is not None:
        y = torch.tensor(list(cfg.data.classes), device=y.device)[y]
    if cfg.aux.name == "parity":
        return y % 2
    if cfg.aux.name == "gt4":
        return (y > 4).long()
    return torch.tensor(COARSE, device=y.device)[y]


def losses(cfg: DictConfig, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's mean auxiliary loss: out (K, B, A), x (K, B, C, H, W), y (K, B) -> (K,)."""
    if cfg.aux.name == "reconstruct":
        return F.mse_loss(out.float(), x.flatten(2).float(), reduction="none").mean((1, 2))
    t = targets(cfg, y)
    ce = F.cross_entropy(out.flatten(0, 1).float(), t.flatten(), reduction="none")
    return ce.view(y.shape).mean(1)


@torch.no_grad()
def evaluate(
    cfg: DictConfig, model: Fused, x: torch.Tensor, y: torch.Tensor, bs: int, amp
) -> list[dict[str, float]]:
    """Every member's auxiliary loss (and accuracy) on (x, y) in eval mode: metrics.csv's
    aux_val_loss, aux_val_acc. model: a fuse.Fused."""
    model.eval()
    outs = []
    for i in range(0, len(x), bs):
        with amp:
            model(model.widen(x[i : i + bs]))
        outs.append(model.aux_output().float())
    out = torch.cat(outs, 1)  # (K, N, A)
    k = out.shape[0]
    xs, ys = x.unsqueeze(0).expand(k, *x.shape), y.unsqueeze(0).expand(k, -1)
    loss = losses(cfg, out, xs, ys).tolist()
    if cfg.aux.name == "reconstruct":
        return [{"aux_val_loss": v} for v in loss]
    acc = (out.argmax(2) == targets(cfg, ys)).float().mean(1).tolist()
    return [{"aux_val_loss": v, "aux_val_acc": a} for v, a in zip(loss, acc, strict=True)]
