"""The run folder, its format in one place: file names, statuses, metric columns, the keys that
do not change what a run computes, and the writes (atomic) and claims (locked) that keep a folder
whole. Imports no torch: `compare` and `sweep` read folders through it, the training writes them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf

from regbench.config import USER_CONF_DEFAULT, USER_CONF_ENV, ConfigError

# outcomes a diverged run has too, times to an event (null: censored), the statuses averaged:
# properties of record.Summary's fields, re-exported for the sweep side
from regbench.record import CENSORED as CENSORED
from regbench.record import DIVERGED_OUTCOMES as DIVERGED_OUTCOMES
from regbench.record import FINAL_OK, Summary
from regbench.record import SIGNED as SIGNED

# ---- the format ---------------------------------------------------------------------------------
CONFIG = "config.yaml"  # the run's composed config (resume: false)
SUMMARY = "summary.json"  # record.Summary: status first; the numbers once the run has finished
METRICS_CSV = "metrics.csv"  # one row per epoch
LOG = "train.log"
LAST = "last.pt"  # the checkpoint a resume continues from
BEST = "best.pt"  # the best epoch's weights (tested instead of the last ones with early stopping)
TEST_OUTPUTS = "test_outputs.npz"  # the tested model's log-probabilities, for compare --ensemble
LOCK = ".lock"
DECISIONS = "decisions.json"  # a staged sweep's, in its sweep folder (written by stages.py)
METRICS = [
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "gen_gap",  # train_acc - val_acc
    "val_ece",  # expected calibration error on the validation split, 15 bins
    "weight_norm",  # L2 norm of the conv/linear weights
    "lr",
    "seconds",
    "samples_per_s",
]
FINAL = (*FINAL_OK, "diverged")  # finished for good: a rerun skips these
BAD = ("failed", "diverged")  # statuses that make a command exit non-zero
STATUSES = ("running", "interrupted", *FINAL, "failed")
# Keys that do not change what a run computes: resume=true continues a run whatever they say, a
# sweep moved to another folder resumes its runs, compare groups across them.
BOOKKEEPING = (
    "resume",
    "out_dir",
    "name",
    "sweep_name",
    "data.root",
    "data.download",
    "trainer.device",
    "trainer.compile",  # like the device: the same computation, other kernels
    "trainer.channels_last",  # likewise: another memory order, the same values
    "trainer.eval_batch_size",  # likewise: the same forward passes, in other chunks
    "trainer.threads",  # likewise: the same kernels on more or fewer cores
    "trainer.progress",
    "trainer.loggers",
)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys: {"trainer.epochs": 20, "reg.none": {}, ...} (an empty
    mapping stays a value: `reg.none` is a choice, not nothing)."""
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, sub in node.items():
        out |= flatten(sub, f"{prefix}.{key}" if prefix else str(key))
    return out


def is_bookkeeping(key: str) -> bool:
    return any(key == b or key.startswith(b + ".") for b in BOOKKEEPING)


# ---- writes: whole files only -------------------------------------------------------------------
def write_atomic(path: Path, data: bytes | str) -> None:
    """Write to a temporary file in the same folder, flush to disk, then rename over `path`."""
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; run folders are meant to be shared and read
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def config_yaml(cfg: DictConfig) -> str:
    """The config as the run folder stores it (resume is how a run was started, not what it is)."""
    c = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(c, dict)
    c.pop("hydra", None)
    c["resume"] = False
    return OmegaConf.to_yaml(c)


def lock(run_dir: Path) -> FileLock:
    """Hold the folder while a run writes it; a second process gets ConfigError, not a shared folder."""
    if not os.access(run_dir, os.W_OK):  # resumed or rerun in a read-only folder
        raise ConfigError(
            f"run folder {run_dir} is read-only; make it writable to continue this run"
        )
    fl = FileLock(run_dir / LOCK)
    try:
        fl.acquire(timeout=0)
    except Timeout:
        raise ConfigError(
            f"run folder {run_dir} is in use by another regbench process; wait for it or pick name=..."
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot lock run folder {run_dir}: {exc.strerror}") from None
    # only the lock holder writes here: temporary files left over are from a writer that was killed
    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    return fl


def is_locked(run_dir: Path) -> bool:
    try:
        FileLock(run_dir / LOCK).acquire(timeout=0).lock.release()
        return False
    except Timeout:
        return True
    except OSError:  # a read-only folder without a lock file: nobody can be writing it
        return False


def read_summary(run_dir: Path) -> Summary | None:
    """The run's summary.json as it is (None: absent or not a JSON mapping)."""
    try:
        raw = json.loads((run_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return Summary.from_json(raw) if isinstance(raw, dict) else None


def claim(out_dir: Path, name: str, cfg: DictConfig, resume: bool) -> tuple[Path, FileLock]:
    """Pick and lock the folder for a run named `name` below out_dir.

    Without resume: the first free name of name, name-1, name-2, ... (os.mkdir is atomic, so two
    processes never get the same one). With resume: the existing folder of that name whose
    config.yaml equals this config; never a folder that holds a different config.
    """
    text = config_yaml(cfg)
    if resume:  # checked before any mkdir: a failed resume creates nothing
        return _resumable(out_dir, name, text)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create output folder {out_dir} ({exc.strerror}); pass out_dir=<a writable folder>"
        ) from None
    if not os.access(out_dir, os.W_OK):
        raise ConfigError(
            f"output folder {out_dir} is not writable; pass out_dir=<writable folder>"
        )
    for i in range(1000):
        run_dir = out_dir / (name if i == 0 else f"{name}-{i}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        held = lock(run_dir)
        write_atomic(run_dir / CONFIG, text)
        return run_dir, held
    raise ConfigError(f"too many runs named {name} in {out_dir}; pick another name=...")


def differences(run_dir: Path, text: str) -> list[str] | None:
    """The keys (not bookkeeping) in which run_dir's config.yaml differs from `text`; None: unreadable."""
    try:
        return differ(text, (run_dir / CONFIG).read_text())
    except (OSError, yaml.YAMLError):
        return None


def differ(text: str, other: str) -> list[str]:
    """The keys (not bookkeeping) in which two configs' texts differ, as `key (here, there)`."""
    here, there = flatten(yaml.safe_load(text)), flatten(yaml.safe_load(other))
    keys = sorted(set(here) | set(there), key=lambda k: (k not in here, k))
    return [
        f"{k} ({_show(here, k)} here, {_show(there, k)} there)"
        for k in keys
        if here.get(k, ...) != there.get(k, ...) and not is_bookkeeping(k)
    ]


def _show(flat: dict[str, Any], key: str) -> str:
    return "absent" if key not in flat else json.dumps(flat[key])


def _resumable(out_dir: Path, name: str, text: str) -> tuple[Path, FileLock]:
    """The first unfinished folder name, name-1, ... holding this config (bookkeeping aside)."""
    same, closest = [], None
    for i in range(1000):
        run_dir = out_dir / (name if i == 0 else f"{name}-{i}")
        if not run_dir.exists():
            break
        diff = differences(run_dir, text)
        if diff is None and i == 0:  # the folder the user named: say why it cannot be resumed
            raise ConfigError(
                f"cannot resume {run_dir}: its {CONFIG} is unreadable; restore it, or delete the "
                "folder to start the run afresh"
            )
        if diff == []:
            same.append(run_dir)
        elif diff and (closest is None or len(diff) < len(closest[1])):
            closest = (run_dir, diff)
    if same:  # all finished: the last one, which then says there is nothing to do
        unfinished = [d for d in same if getattr(read_summary(d), "status", None) not in FINAL]
        run_dir = unfinished[0] if unfinished else same[-1]
        return run_dir, lock(run_dir)
    why = f"no run folder {out_dir / name}[-N] holds this config"
    if closest:
        why += f"; {closest[0].name} differs in {', '.join(closest[1][:3])}"
        why += f" and {len(closest[1]) - 3} more" if len(closest[1]) > 3 else ""
    raise ConfigError(f"nothing to resume: {why}")


def claim_sweep_job(run_dir: Path, cfg: DictConfig) -> FileLock:
    """Lock a sweep job's folder (named by Hydra from its overrides) and record or check its config:
    a folder holding another run is refused; one that differs only in bookkeeping keys (the sweep
    moved to another out_dir, another trainer.progress) is the same run, resumed."""
    run_dir.mkdir(parents=True, exist_ok=True)
    held = lock(run_dir)
    text = config_yaml(cfg)
    if (run_dir / CONFIG).exists() and (diff := differences(run_dir, text)) != []:
        held.release()
        why = f"differs in {', '.join(diff[:3])}" if diff else f"has an unreadable {CONFIG}"
        raise ConfigError(f"{run_dir} holds another run ({why}); use another sweep_name")
    write_atomic(run_dir / CONFIG, text)
    return held


def resume_command(run_dir: Path, task: list[str]) -> str:
    """The command line that continues the run in run_dir: its overrides, its name, resume=true."""
    kept = [shlex.quote(o) for o in task if not o.startswith(("resume=", "name="))]
    user = os.environ.get(USER_CONF_ENV)
    where = (
        [f"--config-dir {user}"] if user and Path(user) != Path(USER_CONF_DEFAULT).resolve() else []
    )
    return " ".join(["regbench", "train", *where, *kept, f"name={run_dir.name}", "resume=true"])


def mark_status(run_dir: Path, status: str, error: str | None = None) -> None:
    """A summary.json that holds only a status (running, interrupted, failed) and its error line."""
    write_summary(run_dir, Summary.note_of(status, run_dir.name, error))


def record_failure(run_dir: Path, error: str, status: str = "failed") -> None:
    """Mark a sweep job failed (or interrupted), unless another process holds its folder (then
    it is not ours)."""
    try:
        if run_dir.exists() and not is_locked(run_dir):
            mark_status(run_dir, status, error)
    except OSError:  # a read-only folder: the error line is all there is
        pass


def write_metrics(run_dir: Path, rows: list[dict[str, float]]) -> None:
    buf = io.StringIO()
    # aux=...: the auxiliary task's columns after the main ones, only in runs that have them
    extra = [k for k in ("aux_val_loss", "aux_val_acc") if rows and k in rows[0]]
    w = csv.DictWriter(buf, fieldnames=[*METRICS, *extra], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_atomic(run_dir / METRICS_CSV, buf.getvalue())


def write_summary(run_dir: Path, summary: Summary) -> None:
    write_atomic(run_dir / SUMMARY, json.dumps(summary.to_json(), indent=2) + "\n")


def write_test_outputs(run_dir: Path, labels: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
    """The tested model's log-softmax outputs on the test split (float32, (N, classes); with
    MC dropout also `mc_log_probs`) and the labels (N,): ensembles are formed from them afterwards
    (`regbench compare --ensemble`) without retraining."""
    buf = io.BytesIO()
    arrays: dict[str, Any] = {k: v.astype(np.float32) for k, v in outputs.items()}
    np.savez(buf, labels=labels.astype(np.int32), **arrays)
    write_atomic(run_dir / TEST_OUTPUTS, buf.getvalue())


def outcome(summary: Summary | Mapping[str, Any], metric: str) -> float | None:
    """A finished run's metric as a number (record.Summary.outcome), from its summary."""
    s = summary if isinstance(summary, Summary) else Summary.from_json(summary)
    return s.outcome(metric)
