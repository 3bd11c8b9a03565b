"""One random stream per source of run-to-run variance, so that "same seed" is a fair pair.

Bouthillier et al. (2021) list the sources: data split, weight initialisation, batch order,
augmentation draws, dropout masks. Each gets its own stream, derived from `seed` (or pinned by
`seeds.<source>`), so a regularizer that draws dropout masks leaves the batch order and the initial
weights of its run exactly those of the baseline run with the same seed (common random numbers).
The split has its own seed, `data.split_seed`, used by data.load.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from regbench.config import ConfigError
from regbench.seeds import source_seed, stream_value


class Streams:
    """The generators of one run. Dropout masks come from torch's global generator, which nothing
    else in the loop draws from (initialisation, batch order and augmentation use their own)."""

    def __init__(self, cfg: DictConfig, device: torch.device) -> None:
        self.order = torch.Generator().manual_seed(source_seed(stream_value(cfg, "order"), "order"))
        self.aug = torch.Generator(device).manual_seed(source_seed(stream_value(cfg, "aug"), "aug"))
        self.dropout_seed = source_seed(stream_value(cfg, "dropout"), "dropout")
        # reg=weightnoise: training-time noise like dropout's masks, so it follows seeds.dropout,
        # but from a generator of its own (sub-stream 2; 1 is MC dropout's): the masks, batches
        # and augmentations of a run stay those of its reg=none pair
        noise = source_seed(stream_value(cfg, "dropout"), "dropout", 2)
        self.noise = torch.Generator(device).manual_seed(noise)
        self.device = device.type

    def start_dropout(self) -> None:
        """Seed the global generator for dropout masks; call after the model is built (module
        constructors draw their throw-away default weights from it)."""
        torch.manual_seed(self.dropout_seed)

    def permutation(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.randperm(n, generator=self.order).to(device)

    def state(self) -> dict[str, Any]:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {
            "device": self.device,
            "order": self.order.get_state(),
            "aug": self.aug.get_state(),
            "noise": self.noise.get_state(),
            "dropout": torch.get_rng_state(),
            "dropout_cuda": cuda,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue the streams of a checkpoint. A CPU generator cannot take a CUDA one's state
        (nor CUDA dropout masks continue on the CPU), so a run resumes on the device type it began on."""
        saved = state.get("device", self.device)
        if saved != self.device:
            raise ConfigError(
                f"this run began on {saved} and would resume on {self.device}: its random streams "
                f"cannot move between them; resume with trainer.device={saved}"
            )
        self.order.set_state(state["order"])
        self.aug.set_state(state["aug"])
        if "noise" in state:  # checkpoints written before reg=weightnoise existed have none
            self.noise.set_state(state["noise"])
        torch.set_rng_state(state["dropout"])
        if state["dropout_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["dropout_cuda"])
