"""sweep.json, the index of a sweep's runs: kept current from inside each job (a Hydra callback,
so it works in joblib workers and submitit jobs alike) and reported at the end. Each run folder's
summary.json stays the source of truth; sweep.json is the index built from them."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regbench import disk, folder
from regbench.config import ConfigError
from regbench.folder import BAD
from regbench.naming import member_configs, run_name

INDEX = "sweep.json"


class Planned(Protocol):
    """What sweep.json records of a sweep's plan (a sweep.Plan; named here, not imported: sweep
    imports this module)."""

    name: str
    dir: Path
    sweeper: str
    launcher: str
    runs: list[dict[str, Any]]


def members(cfg: DictConfig, overrides: list[str]) -> list[tuple[DictConfig, Path, list[str]]]:
    """The runs of one sweep job: its config, run folder and overrides; a fused job (list-valued
    seed) has one per seed, each in the folder its solo run would have."""
    sweep_dir, dirname = Path(cfg.hydra.sweep.dir), cfg.hydra.job.override_dirname
    if not OmegaConf.is_list(cfg.seed):
        return [(cfg, sweep_dir / str(cfg.hydra.sweep.subdir), overrides)]
    rest = [o for o in overrides if not o.startswith("seed=")]
    return [
        (m, sweep_dir / run_name(m, dirname), [*rest, f"seed={m.seed}"])
        for m in member_configs(cfg)
    ]


# ---- status: the run folder is the source of truth ----------------------------------------------
def status_of(run_dir: Path, fallback: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run's status, error line and best val acc from its summary.json (else from fallback)."""
    s = folder.read_summary(run_dir)
    if s is None:
        fb = fallback or {}
        return {
            "status": fb.get("status") or "pending",
            "error": fb.get("error"),
            "best_val_acc": fb.get("best_val_acc"),
        }
    status, error = s.status or "failed", s.error
    if status == "running" and not folder.is_locked(run_dir):
        status = "interrupted"  # its process died
    if status == "interrupted":  # what a rerun does: said from what the folder holds
        error = "interrupted: rerun the same sweep command to " + (
            "resume it from last.pt" if (run_dir / folder.LAST).exists() else "start it again"
        )
    return {"status": status, "error": error, "best_val_acc": s.best_val_acc}


def _update_index(sweep_dir: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read-modify-write sweep.json under a lock: jobs in several processes update it at once."""
    path = sweep_dir / INDEX
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(sweep_dir / f".{INDEX}.lock"):
        try:
            index = json.loads(path.read_text())
        except (OSError, ValueError):
            index = {"runs": []}
        change(index)
        folder.write_atomic(path, json.dumps(index, indent=2) + "\n")
    return index


def write_index(p: Planned, command: str) -> dict[str, Any]:
    """The initial sweep.json of a sweep.Plan: every planned run, plus runs an earlier search (or
    an earlier stage) already added."""

    def change(index: dict[str, Any]) -> None:
        planned = {r["name"] for r in p.runs}
        old = [r | status_of(Path(r["dir"]), r) for r in index["runs"] if r["name"] not in planned]
        index.clear()  # rebuilt whole, in a readable key order
        index.update(
            started=time.time(),  # this command's start: the progress line's clock
            done_before=sum(r.get("status") in folder.FINAL for r in p.runs + old),
            sweep_name=p.name,
            sweep_dir=str(p.dir),
            command=command,
            sweeper=p.sweeper,
            launcher=p.launcher,
            runs=p.runs + old,
        )

    return _update_index(p.dir, change)


def refresh_index(sweep_dir: Path) -> dict[str, Any]:
    """Re-read every run folder's summary.json into sweep.json (at the end of a sweep); a run
    whose process died (a joblib worker ended with the sweep) is marked interrupted there too."""

    def change(index: dict[str, Any]) -> None:
        index["runs"] = [r | status_of(Path(r["dir"]), r) for r in index["runs"]]
        for r in index["runs"]:
            s = folder.read_summary(Path(r["dir"]))
            if r["status"] == "interrupted" and s and s.status == "running":
                folder.record_failure(Path(r["dir"]), r["error"], "interrupted")

    return _update_index(sweep_dir, change)


def _logs(run_dir: Path) -> list[str]:
    """The job's logs: train.log, plus submitit's stdout/stderr when submitit runs the job."""
    logs = [str(run_dir / folder.LOG)]
    if "submitit" in sys.modules:  # a submitit job unpickles its task with submitit
        try:
            paths = sys.modules["submitit"].JobEnvironment().paths
            logs += [str(paths.stdout), str(paths.stderr)]
        except RuntimeError:  # submitit imported, but this process is not one of its jobs
            pass
    return logs


class Tracker(Callback):
    """Hydra callback, run inside each job's process: keeps the job's sweep.json entry current
    (and, with trainer.device=auto and several GPUs, gives the job a GPU of its own)."""

    _gpu: FileLock | None = None

    def _record(self, run_dir: Path, overrides: list[str], status: dict[str, Any]) -> bool:
        """Update the run's entry; whether it was written."""
        entry = {"name": run_dir.name, "dir": str(run_dir), "overrides": overrides} | status

        def change(index: dict[str, Any]) -> None:
            for i, r in enumerate(index["runs"]):
                if r["name"] == entry["name"]:
                    index["runs"][i] = r | entry
                    return
            index["runs"].append(entry)  # a run the sweeper chose as it went (optuna)

        try:
            _update_index(run_dir.parent, change)
        except OSError as exc:
            if not disk.refused(exc):
                raise
            return False  # a full disk: the job's own writes say so; the sweep's end rebuilds it
        return True

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        started = None
        for _, run_dir, overrides in members(config, list(config.hydra.overrides.task)):
            if status_of(run_dir)["status"] in folder.FINAL:  # a finished run is skipped as it is
                continue
            running = {"status": "running", "error": None, "best_val_acc": None}
            if self._record(run_dir, overrides, running | {"logs": _logs(run_dir)}):
                started = started or run_dir  # its progress line: from an index that says so
            if config.trainer.device == "auto" and self._gpu is None:
                from regbench.run.device import pick_gpu  # torch: only inside a job

                self._gpu = pick_gpu(run_dir.parent)
        if started is not None:
            index = json.loads((started.parent / INDEX).read_text())
            Console(highlight=False).print(progress(index), markup=False, soft_wrap=True)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if self._gpu is not None:
            self._gpu.release()
            self._gpu = None
        # the exception itself: return_value prints Hydra's "Error executing job" and raises it
        err = job_return._return_value if job_return.status.name == "FAILED" else None
        fallback = {"status": "failed", "error": f"{type(err).__name__}: {err}"} if err else None
        for cfg, run_dir, overrides in members(config, list(config.hydra.overrides.task)):
            fb = fallback or _skipped(cfg, run_dir)
            self._record(run_dir, overrides, status_of(run_dir, fb) | {"logs": _logs(run_dir)})


def _skipped(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """A transfer run the job skipped (no run folder) because its source failed, diverged or has
    not finished: status `skipped` and the job's line, in the index only."""
    if cfg.transfer.name == "none" or folder.read_summary(run_dir) is not None:
        return None
    from regbench import transfer

    try:
        transfer.resolve(cfg)
    except transfer.Unfinished as exc:
        return {"status": "skipped", "error": str(exc)}
    except ConfigError:  # any other bad source: the job recorded the run as failed
        pass
    return None


# ---- reporting --------------------------------------------------------------------------------
def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def progress(index: dict[str, Any]) -> str:
    """`sweep: run 5 of 24 · 4 done · 0 failed · 0:32 elapsed · about 2:40 left`: the sweep's
    progress as each job starts (left: from the pace of the runs this sweep command finished)."""
    runs = index["runs"]
    done = sum(r["status"] in folder.FINAL for r in runs)
    failed = sum(r["status"] in BAD for r in runs)
    now = sum(r["status"] == "running" for r in runs)
    line = f"sweep: run {min(done + now, len(runs))} of {len(runs)} · {done} done · {failed} failed"
    start, before = index.get("started"), index.get("done_before", done)
    if start is not None:
        elapsed = time.time() - start
        line += f" · {_clock(elapsed)} elapsed"
        if done > before:
            line += f" · about {_clock(elapsed / (done - before) * (len(runs) - done))} left"
    return line


def _acc(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "-"


def print_runs(index: dict[str, Any], console: Console, title: str) -> None:
    t = Table(title=title, title_justify="left")
    for col in ("run", "status", "best val acc", "error"):
        t.add_column(col, overflow="fold")
    colour = {"completed": "green", "early_stopped": "green", "failed": "red", "diverged": "red"}
    for r in index["runs"]:
        st = r["status"]
        t.add_row(
            escape(r["name"]),
            f"[{colour.get(st, 'yellow')}]{st}[/]",
            _acc(r.get("best_val_acc")),
            escape(r.get("error") or ""),
        )
    console.print(t)


def print_groups(index: dict[str, Any], swept: list[str], console: Console) -> None:
    """Best validation accuracy per group: runs that differ only in their seed."""
    keys = [k for k in swept if k != "seed"]
    groups: dict[str, list[float]] = {}
    for r in index["runs"]:
        values = dict(o.split("=", 1) for o in r["overrides"] if "=" in o)
        label = " ".join(f"{k}={values.get(k)}" for k in keys) or "all runs"
        acc = r.get("best_val_acc")
        groups.setdefault(label, [])
        if isinstance(acc, (int, float)) and r["status"] not in BAD:
            groups[label].append(acc)
    t = Table(title="best validation accuracy per group (over seeds)", title_justify="left")
    for col in ("group", "finished runs", "best", "mean", "std"):
        t.add_column(col, overflow="fold")
    for label, accs in groups.items():
        t.add_row(
            escape(label),
            str(len(accs)),
            _acc(max(accs)) if accs else "-",
            _acc(statistics.fmean(accs)) if accs else "-",
            _acc(statistics.stdev(accs)) if len(accs) > 1 else "-",
        )
    console.print(t)


def skipped(index: dict[str, Any]) -> list[str]:
    """One line per transfer run skipped because its source run failed or has not finished."""
    return [f"{r['name']}: {r.get('error')}" for r in index["runs"] if r["status"] == "skipped"]


def failures(index: dict[str, Any]) -> list[str]:
    """One line per failed or diverged run, naming where its logs are."""
    lines = []
    for r in index["runs"]:
        if r["status"] in BAD:
            error = r.get("error") or "non-finite loss (try a smaller optim.lr)"
            logs = ", ".join(r.get("logs") or [str(Path(r["dir"]) / folder.LOG)])
            lines.append(f"{r['name']}: {r['status']}: {error} (logs: {logs})")
    return lines
