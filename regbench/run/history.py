"""What a run has done so far: its metric rows, best epoch and early-stopping count, as its
last.pt stores and restores them (one Record per member of a fused job)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from regbench import __version__, folder
from regbench.config import ConfigError
from regbench.diagnostics import overfit_epoch
from regbench.record import Summary
from regbench.run import checkpoint


@dataclass
class Record:
    """The bookkeeping of one run's epochs, as its last.pt stores and restores it."""

    es: DictConfig | None  # reg.earlystop, or None
    rows: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "score": -math.inf})
    bad_epochs: int = 0
    prior: float = 0.0  # wall seconds spent before a resume
    status: str = "completed"
    improved: bool = False

    @property
    def monitor(self) -> str:
        return self.es.monitor if self.es else "val_acc"

    def add(self, row: dict[str, float], diverged: bool) -> bool:
        """Record an epoch; False when the run ends here (diverged or early-stopped)."""
        self.rows.append(row)
        self.improved = False
        if diverged or not math.isfinite(row["val_loss"]):
            self.status = "diverged"
            return False
        score = (-1.0 if self.monitor == "val_loss" else 1.0) * row[self.monitor]
        if score > self.best["score"] + (self.es.min_delta if self.es else 0.0):
            self.best, self.bad_epochs, self.improved = {**row, "score": score}, 0, True
        else:
            self.bad_epochs += 1
        if self.es and self.bad_epochs >= self.es.patience:
            self.status = "early_stopped"
            return False
        return True

    def save(self, run_dir: Path, weights: dict[str, Any], state: dict[str, Any], wall: float):
        """best.pt (if improved), last.pt, then metrics.csv: a kill between two writes leaves rows
        that a resume rewrites identically. A diverged run keeps the last finite checkpoint."""
        if self.improved:
            checkpoint.save(run_dir / folder.BEST, {"model": weights, "epoch": len(self.rows)})
        if self.status != "diverged":
            checkpoint.save(
                run_dir / folder.LAST,
                {
                    "model": weights,
                    **state,
                    "rows": self.rows,
                    "best": self.best,
                    "bad_epochs": self.bad_epochs,
                    "wall": self.prior + wall,
                },
            )
        folder.write_metrics(run_dir, self.rows)

    def resume(self, path: Path, model: torch.nn.Module, restore) -> None:
        """Load last.pt into the model, then hand the rest of the checkpoint to `restore`
        (optimizer, schedule, random streams). A checkpoint of another run is one clear line."""
        ck = checkpoint.load(path)
        try:
            model.load_state_dict(ck["model"])
            restore(ck)
            self.rows, self.best, self.bad_epochs = ck["rows"], ck["best"], ck["bad_epochs"]
            self.prior = ck["wall"]
        except ConfigError as exc:  # the checkpoint fits but cannot continue here (streams)
            raise ConfigError(f"checkpoint {path}: {exc}") from None
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"checkpoint {path} does not fit this run ({type(exc).__name__}); "
                "delete it to start the run afresh"
            ) from None

    def summary(self, run_dir: Path, seed: int, wall: float) -> Summary:
        """summary.json's fields known from the epochs (the test fields are filled by the caller)."""
        best, last = self.best, (self.rows[-1] if self.rows else {})
        return Summary(
            status=self.status,
            run_name=run_dir.name,
            best_epoch=best.get("epoch") or None,
            best_val_acc=best.get("val_acc"),
            best_val_loss=best.get("val_loss"),
            final_val_acc=last.get("val_acc"),
            final_train_acc=last.get("train_acc"),
            train_acc_at_best=best.get("train_acc"),
            gen_gap=best.get("gen_gap"),
            overfit_epoch=overfit_epoch([r["val_loss"] for r in self.rows]),
            diverged=self.status == "diverged",  # an outcome, not a missing value
            epochs_run=len(self.rows),
            wall_seconds=round(self.prior + wall, 2),
            torch_version=torch.__version__,
            regbench_version=__version__,
            seed=seed,
        )
