"""`regbench inspect`: each layer's activation standard deviation at initialisation, on one batch.

The lecture decks' slide for "why initialisation matters": in a deep net drawn from N(0, 0.01) the
activations shrink layer after layer towards 0; from N(0, 1) they explode (ReLU) or saturate (tanh,
sigmoid); Glorot and He keep them at one scale. This draws that figure for any config (or several:
comma lists expand as in a sweep), from the run's own first training batch and initial weights.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from regbench import data, models
from regbench.run import streams
from regbench.run.device import resolve_device


def expand(overrides: list[str]) -> list[tuple[str, list[str]]]:
    """Hydra's own override parser: comma lists (and range(), choice()) expand to their cartesian
    product, as `regbench sweep` would; each combination is labelled by its swept values."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [str(o.input_line) for o in parsed if not o.is_sweep_override()]
    axes = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        for o in parsed
        if o.is_sweep_override()
    ]
    return [
        (" ".join(combo) or "config", fixed + list(combo)) for combo in itertools.product(*axes)
    ]


def activation_stds(cfg: DictConfig) -> list[float]:
    """The standard deviation of every activation layer's output, in forward order, on the run's
    first training batch (its order stream), with the run's initial weights (its init stream)."""
    device = resolve_device(cfg.trainer.device)
    d = data.load(cfg.data, device, cfg.seed)
    rng = streams.Streams(cfg, device)
    model = models.build(cfg, d.shape, d.num_classes).to(device)
    rng.start_dropout()
    batch = d.x_train[rng.permutation(len(d.x_train), device)[: cfg.trainer.batch_size]]
    stds: list[float] = []
    kinds = tuple({type(make()) for make in models.ACTIVATIONS.values()})
    for m in model.modules():
        if isinstance(m, kinds):
            m.register_forward_hook(lambda _m, _i, out: stds.append(out.float().std().item()))
    model.train()  # what the first training step sees (batch norm on batch statistics)
    with torch.no_grad():
        model(batch)
    return stds


def plot(curves: dict[str, list[float]], title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, stds in curves.items():
        ax.plot(range(1, len(stds) + 1), stds, marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("layer (output of its activation, input side first)")
    ax.set_ylabel("std of activations at initialisation (log scale)")
    ax.set_title(title, fontsize=10)
    # the default AutoLocator is a MaxNLocator, whose set_params takes integer (not in the stubs)
    ax.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def title(cfgs: list[DictConfig]) -> str:
    """What every curve shares: the model (and its activation, unless that is swept), the batch."""
    cfg = cfgs[0]
    acts = {c.model.activation for c in cfgs}
    model = f"{cfg.model.name} ({cfg.model.activation})" if len(acts) == 1 else cfg.model.name
    return (
        f"{model}, one batch of {cfg.trainer.batch_size} {cfg.data.name} training images, "
        f"seed {cfg.seed}"
    )


def report(curves: dict[str, list[float]]) -> str:
    """The numbers behind the figure, one line per curve."""
    width = max(len(label) for label in curves)
    return "\n".join(
        f"{label:<{width}}  " + " ".join(f"{s:9.3g}" for s in stds)
        for label, stds in curves.items()
    )
