"""Checkpoints: a run's weights, optimizer and random streams as torch writes them, whole."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from regbench.config import ConfigError
from regbench.folder import write_atomic


def save(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    write_atomic(path, buf.getvalue())


def load(path: Path) -> dict[str, Any]:
    """weights_only=True: a checkpoint is data, never code; a bad file is one clear line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"checkpoint {path} is corrupt or not a regbench checkpoint ({type(exc).__name__}); "
            "delete it to start the run afresh"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise ConfigError(
            f"checkpoint {path} is not a regbench checkpoint; delete it to start afresh"
        )
    return state
