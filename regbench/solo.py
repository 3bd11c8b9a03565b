"""One run, as `regbench train` or one sweep job runs it: check the config, load the data, claim
the run folder, fit, write the summary; errors as one line (`regbench train`) or recorded in the
run folder (a sweep job, which must never stop the others)."""

from __future__ import annotations

import math
import sys
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.table import Table

from regbench import data, loggers, runs
from regbench.config import ConfigError, run_name
from regbench.pitfalls import warnings
from regbench.schema import validate
from regbench.train import Member, console, err_console, fit, resolve_device

# the summary lines `regbench train` prints (mc_test_acc only where there is one)
SHOWN = "status best_epoch epochs_run best_val_acc test_acc mc_test_acc gen_gap wall_seconds params device"


def summary_table(summary: dict[str, Any]) -> Table:
    t = Table(show_header=False)  # the folder goes on its own line: a title wraps mid-word
    for key in SHOWN.split():
        v = summary.get(key)
        if key == "mc_test_acc" and v is None:
            continue
        t.add_row(key, f"{v:.4f}" if isinstance(v, float) and key != "wall_seconds" else str(v))
    return t


def fail(msg: str, code: int) -> None:
    err_console.print(f"error: {msg}", soft_wrap=True)
    sys.exit(code)


def _claim(cfg: DictConfig, job_dir: Path | None) -> tuple[data.Splits, Path, Any] | float:
    """Check the config, load the data, claim the run folder (and its lock); a sweep job that has
    finished before returns its best validation accuracy instead. Raises ConfigError."""
    validate(cfg)
    if job_dir is not None:
        previous = runs.read_summary(job_dir)
        if previous and previous.get("status") in runs.FINAL:  # a rerun skips finished jobs
            console.print(f"[dim]{job_dir.name}[/dim]  already {previous['status']}: skipped")
            return previous.get("best_val_acc") or math.nan
    # data before the run folder: a missing dataset leaves no folder behind
    d = data.load(cfg.data, resolve_device(cfg.trainer.device), cfg.seed)
    if job_dir is not None:
        return d, job_dir, runs.claim_sweep_job(job_dir, cfg)
    out = Path(cfg.out_dir)
    return d, *runs.claim(out, cfg.name or run_name(cfg), cfg, cfg.resume)


def _failed(
    exc: Exception, run_dir: Path, log: Callable[[str], None], logfile: Any, multirun: bool
) -> None:
    """A run that raised: SLURM's time limit is `interrupted`; anything else `failed`, one line
    (and the traceback in train.log when it is not a ConfigError); `regbench train` exits."""
    stopped = runs.stop_reason(exc)
    if stopped:
        log(stopped)
        runs.mark_status(run_dir, "interrupted", stopped)
        err_console.print(f"error: {run_dir.name}: {stopped}", soft_wrap=True)
        return
    line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not isinstance(exc, ConfigError):
        line = f"{type(exc).__name__}: {line}"
        logfile.write(traceback.format_exc())
    runs.mark_status(run_dir, "failed", line)
    if not multirun:
        fail(f"{line} (log: {run_dir / 'train.log'})", 2 if isinstance(exc, ConfigError) else 1)
    err_console.print(f"error: {run_dir.name}: {line}", soft_wrap=True)


def _interrupted(
    exc: BaseException, run_dir: Path, log: Callable[[str], None], multirun: bool
) -> None:
    """Ctrl-C or SLURM's requeue: `interrupted`, and for `regbench train` the command that resumes."""
    stopped = runs.stop_reason(exc)
    log(stopped)
    runs.mark_status(run_dir, "interrupted", stopped)
    if not multirun and isinstance(exc, KeyboardInterrupt):  # in-process callers (tests)
        task = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
        hint = runs.resume_command(run_dir, list(task))
        err_console.print(f"interrupted: continue with {hint}", soft_wrap=True)


def run(cfg: DictConfig) -> float:
    """One run; returns the best validation accuracy (what sweepers maximise; NaN if none).

    A single run (`regbench train`) reports errors as one line and a non-zero exit code. Inside a
    multirun (`regbench sweep`) a failing job must never stop the others, so errors are recorded
    in the job's summary.json and the job returns NaN instead of raising.
    """
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    job_dir = Path(HydraConfig.get().runtime.output_dir) if multirun else None
    try:
        claimed = _claim(cfg, job_dir)
    except ConfigError as exc:
        if job_dir is None:
            fail(str(exc), 2)
        err_console.print(f"error: {job_dir.name}: {exc}", soft_wrap=True)
        runs.record_failure(job_dir, str(exc))
        return math.nan
    if isinstance(claimed, float):  # a finished sweep job: skipped
        return claimed
    d, run_dir, held = claimed

    # claim() hands over the lock acquired once; `with held` would acquire it again and release it
    # once (filelock counts), leaving the folder locked in this process until garbage collection
    with ExitStack() as cleanup, open(run_dir / "train.log", "a") as logfile:
        cleanup.callback(held.release)

        def log(line: str) -> None:
            logfile.write(line + "\n")
            logfile.flush()
            console.print(
                f"[dim]{run_dir.name}[/dim]  {line}" if multirun else line, soft_wrap=True
            )

        previous = runs.read_summary(run_dir)
        if previous and previous.get("status") in runs.FINAL:
            log(f"already finished ({previous['status']}): nothing to do")
            return previous.get("best_val_acc") or math.nan
        runs.mark_status(run_dir, "running")
        log(f"run folder {run_dir}{runs.slurm_job()}")
        for line in warnings(cfg, len(d.x_val)):  # known-bad combinations: said, not refused
            where = f"{run_dir.name}: " if multirun else ""
            err_console.print(f"warning: {where}{line}", soft_wrap=True)
            logfile.write(f"warning: {line}\n")
        try:
            tracker = cleanup.enter_context(loggers.open_loggers(cfg, run_dir))
            (summary,) = fit([Member(cfg, run_dir, log, on_epoch=tracker.epoch)], d)
        except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C; submitit requeued a SLURM job
            _interrupted(exc, run_dir, log, multirun)
            raise
        except Exception as exc:  # ConfigError included: a bad checkpoint is found only here
            _failed(exc, run_dir, log, logfile, multirun)
            return math.nan
        runs.write_summary(run_dir, summary)
        tracker.finish(summary)
    if not multirun:
        console.print(f"summary of {run_dir}", soft_wrap=True)
        console.print(summary_table(summary))
        if summary["status"] == "diverged":
            fail(f"run diverged (non-finite loss); see {run_dir / 'metrics.csv'}", 1)
    return summary["best_val_acc"] if summary["best_val_acc"] is not None else math.nan
