"""Optional experiment trackers next to the run folder: TensorBoard event files and MLflow runs.

The interface: `open_loggers(cfg, run_dir, sweep)` (a context manager) gives an object with
`.epoch(row)` per metrics.csv row, called once the epoch is in last.pt (so a resume never logs it
twice), `.resume(rows)` for a resumed run's epochs (those a stop between last.pt and the log left
out are logged then), and `.finish(summary)` once summary.json is written; a run that ends any
other way (failure, Ctrl-C) is closed as failed / killed on exit.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

from regbench.folder import flatten

MLFLOW_EXPERIMENT = "regbench"


def hparams(cfg: DictConfig) -> dict[str, str | int | float | bool]:
    """The config as flat dotted keys with scalar values (lists as text, reg as dropout+l2)."""
    c = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(c, dict)
    c.pop("hydra", None)
    flat: dict[str, str | int | float | bool] = {"reg": "+".join(cfg.reg.keys())}
    for key, v in flatten(c).items():
        if isinstance(v, (str, int, float, bool)):
            flat[key] = v
        elif v is not None and v != {}:  # an empty mapping (reg.none) is a choice, named in "reg"
            flat[key] = str(v)
    return flat


def final_metrics(summary: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in summary.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "seed"
    }


class TensorBoard:
    """Event files in the run folder: per-epoch scalars, and hparams with the final metrics."""

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.cfg, self.run_dir = cfg, run_dir
        self.writer = SummaryWriter(log_dir=str(run_dir))

    def logged(self) -> set[int]:
        """The epochs the folder's event files hold (earlier starts of a resumed run included)."""
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(self.run_dir), size_guidance={"scalars": 0})
        events.Reload()
        tags = events.Tags()["scalars"]
        return {e.step for e in events.Scalars("val_acc")} if "val_acc" in tags else set()

    def epoch(self, row: dict[str, float]) -> None:
        for key, value in row.items():
            if key != "epoch":
                self.writer.add_scalar(key, value, row["epoch"])
        self.writer.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        # the HParams view compares runs by these final metrics (one event file: this run folder)
        metrics = {f"final/{k}": v for k, v in final_metrics(summary).items()}
        writer = self.writer.file_writer
        assert writer is not None  # SummaryWriter opens it in its constructor
        for part in hparams_summary(hparams(self.cfg), metrics):
            writer.add_summary(part)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value)

    def close(self, status: str) -> None:
        self.writer.close()


class MLflow:
    """One MLflow run per run folder: params, per-epoch metrics, the summary, the sweep as a tag.

    Tracking: MLFLOW_TRACKING_URI where set, else a SQLite store in <out_dir>/mlruns (MLflow's
    own local backend). A resumed run folder continues its MLflow run.
    """

    def __init__(self, cfg: DictConfig, run_dir: Path, sweep: str | None) -> None:
        from mlflow.tracking import MlflowClient

        for name in ("alembic", "mlflow"):  # the store's first-use migrations log at INFO
            logging.getLogger(name).setLevel(logging.WARNING)

        out = Path(cfg.out_dir).resolve()
        local = out / "mlruns"
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            local.mkdir(exist_ok=True)
            uri = f"sqlite:///{local / 'mlflow.db'}"
        # parallel sweep jobs: one creates the store and the experiment, the others wait
        with FileLock(out / ".mlflow.lock"):
            self.client = MlflowClient(tracking_uri=uri)
            exp = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
            exp_id = (
                exp.experiment_id
                if exp
                else self.client.create_experiment(
                    MLFLOW_EXPERIMENT, artifact_location=(local / "artifacts").as_uri()
                )
            )
        folder = str(run_dir.resolve())
        earlier = self.client.search_runs(
            [exp_id], f"tags.run_dir = '{folder}' and attributes.status != 'FINISHED'"
        )
        if earlier:  # resume: continue the same MLflow run
            self.run_id = earlier[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        tags = {"run_dir": folder, **({"sweep": sweep} if sweep else {})}
        self.run_id = self.client.create_run(exp_id, run_name=run_dir.name, tags=tags).info.run_id
        from mlflow.entities import Param

        params = [Param(k, str(v)[:6000]) for k, v in hparams(cfg).items()]
        self.client.log_batch(self.run_id, params=params)

    def logged(self) -> set[int]:
        return {m.step for m in self.client.get_metric_history(self.run_id, "val_acc")}

    def epoch(self, row: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        step = int(row["epoch"])
        metrics = [Metric(k, float(v), now, step) for k, v in row.items() if k != "epoch"]
        self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, summary: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(f"final_{k}", v, now, 0) for k, v in final_metrics(summary).items()]
        self.client.log_batch(self.run_id, metrics=metrics)
        self.client.set_tag(self.run_id, "status", summary["status"])
        self.client.log_dict(self.run_id, summary, "summary.json")

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=status)


class Loggers:
    def __init__(self, active: list[Any]) -> None:
        self.active, self.finished = active, False

    def epoch(self, row: dict[str, float]) -> None:
        for logger in self.active:
            logger.epoch(row)

    def resume(self, rows: list[dict[str, float]]) -> None:
        """A resumed run's epochs that a logger lacks (stopped after last.pt, before the log):
        logged now, each epoch once."""
        for logger in self.active:
            done = logger.logged()
            for row in rows:
                if int(row["epoch"]) not in done:
                    logger.epoch(row)

    def finish(self, summary: dict[str, Any]) -> None:
        for logger in self.active:
            logger.finish(summary)
        self.finished = True


@contextmanager
def open_loggers(cfg: DictConfig, run_dir: Path, sweep: str | None) -> Iterator[Loggers]:
    """The loggers trainer.loggers names, for one run folder (of the sweep named, if any); closed
    whatever happens."""
    active: list[Any] = []
    for name in cfg.trainer.loggers:
        active.append(
            TensorBoard(cfg, run_dir) if name == "tensorboard" else MLflow(cfg, run_dir, sweep)
        )
    loggers = Loggers(active)
    status = "FAILED"
    try:
        yield loggers
        status = "FINISHED" if loggers.finished else "FAILED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        for logger in active:
            logger.close(status)
