"""transfer=finetune / frozen: a run starts from another run's weights (Yosinski et al. 2014's
AnB+ and AnB). Every layer whose name and shape match is loaded; the classifier is left at its
fresh initialisation when the source learnt another class set; the first transfer.freeze blocks
are not trained. A block is one conv/linear layer with the batch norm that follows it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from torch import nn

from regbench import folder
from regbench.config import ConfigError
from regbench.record import Summary
from regbench.run import checkpoint

FIX = "set transfer.source=<a finished run folder, a sweep folder holding one run per seed, or a .pt file>"


class Unfinished(ConfigError):
    """The source run failed, diverged or has not finished: `regbench train` refuses it (exit 2);
    a sweep skips the run with one line, making no run folder, and goes on."""


@dataclass(frozen=True)
class Source:
    """Where a run's starting weights come from: what its summary.json records."""

    checkpoint: Path
    run_dir: Path | None  # None: a bare checkpoint file
    config_hash: str | None  # sha256 of the source's config.yaml (first 16 hex digits)
    task: tuple[str, list[int] | None] | None  # the source's (data.name, data.classes)

    def record(self, loaded: int) -> dict[str, Any]:
        """The summary fields that say where the weights came from (record.Summary's transfer_*)."""
        s = Summary(
            transfer_source=str(self.run_dir or self.checkpoint),
            transfer_source_config_hash=self.config_hash,
            transfer_layers_loaded=loaded,
        )
        return {k: v for k, v in vars(s).items() if k.startswith("transfer_")}


def _config_of(run_dir: Path) -> dict[str, Any]:
    try:
        return yaml.safe_load((run_dir / folder.CONFIG).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _run_of_seed(sweep_dir: Path, seed: int) -> Path:
    """The run folder of `seed` in a sweep folder: pairing by seed, seed s from seed s's source."""
    runs = [d for d in sorted(sweep_dir.iterdir()) if (d / folder.CONFIG).is_file()]
    mine = [d for d in runs if _config_of(d).get("seed") == seed]
    if not mine:
        raise ConfigError(
            f"transfer source {sweep_dir} has no run of seed {seed}; run its sweep with seed={seed}, or {FIX}"
        )
    if len(mine) > 1:
        names = ", ".join(d.name for d in mine[:3])
        raise ConfigError(
            f"transfer source {sweep_dir} has {len(mine)} runs of seed {seed} ({names}); point transfer.source at one run folder"
        )
    return mine[0]


def resolve(cfg: DictConfig) -> Source | None:
    """The run's source (None: transfer=none); ConfigError when it is missing or unfinished."""
    if cfg.transfer.name == "none":
        return None
    path = Path(str(cfg.transfer.source)).expanduser()
    if path.is_file():
        return Source(path, None, None, None)
    if not path.is_dir():
        raise ConfigError(f"transfer source {path} does not exist; {FIX}")
    run_dir = path if (path / folder.CONFIG).is_file() else _run_of_seed(path, int(cfg.seed))
    status = getattr(folder.read_summary(run_dir), "status", None) or "not started"
    if status in folder.BAD:
        raise Unfinished(
            f"transfer source {run_dir} is {status}: no weights to start from; fix the source run (its train.log says why), rerun it, then rerun this"
        )
    if status not in folder.FINAL_OK:
        raise Unfinished(
            f"transfer source {run_dir} is {status}, not finished; finish it (rerun its sweep or train it), then rerun this"
        )
    ck = run_dir / folder.BEST if (run_dir / folder.BEST).is_file() else run_dir / folder.LAST
    config = _config_of(run_dir)
    data = config.get("data", {})
    digest = hashlib.sha256((run_dir / folder.CONFIG).read_bytes()).hexdigest()[:16]
    return Source(ck, run_dir, digest, (data.get("name"), data.get("classes")))


def blocks(model: nn.Module) -> list[list[str]]:
    """The model's blocks in forward order, as parameter names: each conv/linear layer with the
    batch norms after it; the last block is the classifier (an auxiliary head is none of them)."""
    out: list[list[str]] = []
    for name, m in model.named_modules():
        if (
            name.split(".")[0] == "aux"
        ):  # multitask.py's auxiliary head: not on the way to the classifier
            continue
        own = [f"{name}.{p}" if name else p for p, _ in m.named_parameters(recurse=False)]
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            out.append(own)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and out:
            out[-1] += own
    return out


def _same_task(cfg: DictConfig, source: Source) -> bool:
    classes = OmegaConf.to_object(cfg.data.classes) if cfg.data.get("classes") else None
    return source.task == (cfg.data.get("name"), classes)


def load(cfg: DictConfig, model: nn.Module, source: Source) -> int:
    """Copy the source's matching tensors into `model` (a solo model); the number of layers
    loaded. The classifier is skipped when the class set differs (a checkpoint file: always)."""
    state = checkpoint.load(source.checkpoint)["model"]
    own = model.state_dict()
    parts = blocks(model)
    classifier = {n.rsplit(".", 1)[0] for n in parts[-1]} if parts else set()
    skip = set() if source.task is not None and _same_task(cfg, source) else classifier
    take = {
        k: v
        for k, v in state.items()
        if k in own and own[k].shape == v.shape and k.rsplit(".", 1)[0] not in skip
    }
    layers = {k.rsplit(".", 1)[0] for k in take if own[k].ndim >= 2}
    if not layers:
        raise ConfigError(
            f"transfer source {source.run_dir or source.checkpoint} has no layer whose name and shape match this model's ({cfg.model.name}); transfer between runs of the same model"
        )
    with torch.no_grad():
        for k, v in take.items():
            own[k].copy_(v)
    return len(layers)


def frozen(cfg: DictConfig, model: nn.Module) -> set[str]:
    """The parameter names of the first transfer.freeze blocks; ConfigError when the model has
    fewer blocks before its classifier."""
    k = int(cfg.transfer.get("freeze", 0))
    parts = blocks(model)
    if k > len(parts) - 1:
        raise ConfigError(
            f"transfer.freeze={k}, but model={cfg.model.name} has {len(parts) - 1} blocks before its classifier; freeze at most {len(parts) - 1}"
        )
    return {n for part in parts[:k] for n in part}


def check(cfg: DictConfig, model: nn.Module) -> None:
    """Everything that can be wrong with the run's transfer, before any run folder: the source
    exists and has finished, some layer matches, the blocks to freeze exist."""
    source = resolve(cfg)
    if source is not None:
        load(cfg, model, source)
        frozen(cfg, model)
