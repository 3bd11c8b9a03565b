"""Known-bad combinations: valid configs that mislead. Each is one `warning:` line at start (and in
`regbench sweep --dry-run`); the run goes on."""

from __future__ import annotations

from omegaconf import DictConfig

from regbench.datasets import DATASETS, split_sizes

ADAPTIVE = ("adam", "rmsprop")  # per-parameter step sizes: an L2 gradient is rescaled with the rest


def _dataset(cfg: DictConfig, field: str) -> object:
    """A packaged dataset's field (None for the user's own dataset)."""
    d = DATASETS.get(cfg.data.get("name"))
    return getattr(d, field) if d else None


def warnings(cfg: DictConfig, n_val: int | None) -> list[str]:
    """Known-bad combinations: the run goes on, the user is told why it may mislead."""
    reg, out = cfg.reg, []
    if "l2" in reg and cfg.optim.name in ADAPTIVE:
        out.append(
            f"reg=l2 with optim={cfg.optim.name}: an L2 penalty is not weight decay under an "
            "adaptive optimizer (Loshchilov & Hutter 2019); consider reg=wd or optim=adamw"
        )
    if "dropout" in reg and reg.dropout.where == "all" and "bn" in reg:
        out.append(
            "channel dropout (reg.dropout.where=all) with reg=bn: dropout shifts the variance that "
            "batch norm's running statistics see at evaluation (Li et al. 2019)"
        )
    if "bn" in reg and cfg.trainer.batch_size < 16:
        out.append(
            f"reg=bn with trainer.batch_size={cfg.trainer.batch_size}: batch statistics of fewer "
            "than 16 examples are noisy; use a larger batch"
        )
    if "aug" in reg and reg.aug.flip > 0 and _dataset(cfg, "labels") == "digits":
        out.append(
            f"reg.aug.flip={reg.aug.flip} on {cfg.data.name}: digits are not mirror-symmetric; "
            "set reg.aug.flip=0"
        )
    if "aug" in reg and reg.aug.hue > 0 and _dataset(cfg, "channels") == 1:
        out.append(
            f"reg.aug.hue={reg.aug.hue} on {cfg.data.name}: one channel has no colour to shift, the "
            "hue shift does nothing; set reg.aug.hue=0"
        )
    if cfg.data.get("preprocess") == "pca" and cfg.model.get("name") in ("cnn", "vgg", "resnet"):
        out.append(
            f"data.preprocess=pca with model={cfg.model.name}: principal components laid out as an "
            "image have no spatial structure for convolutions; use data.preprocess=zca"
        )
    sizes = split_sizes(cfg.data)
    if sizes and cfg.data.subset is not None and cfg.data.subset > sizes[0]:
        out.append(
            f"data.subset={cfg.data.subset} is more than the {sizes[0]:,} training examples of "
            f"{cfg.data.name}: all of them are used"
        )
    if "earlystop" in reg and n_val is not None and n_val < 100:
        out.append(
            f"reg=earlystop with a validation split of {n_val} examples: the stopping epoch will "
            "follow noise; raise data.val_fraction"
        )
    return out


def fusion_warnings(cfg: DictConfig, device_type: str) -> list[str]:
    """Where fusing does not pay, measured (benchmarks/README.md): conv nets on a CPU."""
    if cfg.trainer.fuse > 1 and device_type == "cpu" and cfg.model.name != "mlp":
        return [
            f"trainer.fuse={cfg.trainer.fuse} with model={cfg.model.name} on the CPU: grouped "
            "convolutions run below dense ones there, so the fused job is slower than its runs one "
            "after another (benchmarks/README.md); fusion pays for mlp on a CPU, and for both on a GPU"
        ]
    return []
