"""regbench sweep: expand a grid or a named study, launch it with Hydra's multirun, track it in sweep.json.

Hydra does the launching (sweeper and launcher plugins); this module only plans the runs up front
(names, validity, what is already done), keeps `<sweep dir>/sweep.json` current from inside each
job (a Hydra callback, so it works in joblib workers and submitit jobs alike) and reports at the end.
Each run folder's summary.json stays the source of truth; sweep.json is the index built from them.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock, Timeout
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regbench import folder
from regbench.compose import check, compose_overrides
from regbench.config import (
    ConfigError,
    conf_dirs,
    group_options,
    member_configs,
    run_name,
    val_size,
)
from regbench.folder import BAD
from regbench.pitfalls import warnings
from regbench.schema import NAME_PATTERN

INDEX = "sweep.json"
CALLBACK = "+hydra.callbacks.regbench_sweep._target_=regbench.sweep.Tracker"


# ---- planning: overrides -> sweep name, Hydra argv and the list of runs --------------------------
@dataclass
class Plan:
    name: str
    dir: Path
    argv: list[str]  # what follows `--multirun` for Hydra
    sweeper: str
    launcher: str
    runs: list[dict[str, Any]] = field(default_factory=list)  # empty when the sweeper picks runs
    swept: list[str] = field(default_factory=list)  # keys that vary between runs
    warnings: dict[str, list[str]] = field(default_factory=dict)  # run name: known-bad combinations


def load_study(name: str) -> tuple[str, list[str]]:
    """study/NAME.yaml (the user's folder first, then conf/): `sweep_name` and `overrides`."""
    path = next((p for d in conf_dirs() if (p := d / "study" / f"{name}.yaml").is_file()), None)
    if path is None:
        raise ConfigError(
            f"unknown study '{name}'; choose from: {', '.join(group_options('study'))}"
        )
    spec = yaml.safe_load(path.read_text())
    if not isinstance(spec, dict) or not isinstance(spec.get("overrides"), dict):
        raise ConfigError(f"{path} needs an 'overrides' mapping (key: value, e.g. seed: 0,1,2)")
    overrides = [
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in spec["overrides"].items()
    ]
    return spec.get("sweep_name", name), overrides


def _parse(overrides: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        raise ConfigError(f"bad override: {str(exc).splitlines()[0]}") from None


def _short_hash(items: list[str]) -> str:
    return hashlib.sha1("\n".join(sorted(items)).encode()).hexdigest()[:8]


def _hydra_defaults(
    hydra: list[str], keys: dict[str, Override], swept: list[str], base_cfg: Any
) -> list[str]:
    """The Hydra settings a sweep needs unless the user gave them: optuna maximises, submitit's
    folder, run folder names, Ray's object store."""
    sweeper = base_cfg.runtime.choices["hydra/sweeper"]
    launcher = base_cfg.runtime.choices["hydra/launcher"]
    added: list[str] = []
    if sweeper == "optuna" and not any(h.startswith("hydra.sweeper.direction=") for h in hydra):
        added.append("hydra.sweeper.direction=maximize")  # the job returns best val acc
    folder = "hydra.launcher.submitit_folder"
    if launcher.startswith("submitit") and not any(h.startswith(folder) for h in hydra):
        # the plugin's default .submitit/%j leaves an empty folder literally named %j behind
        added.append(f"{folder}=${{hydra.sweep.dir}}/.submitit")
    exclude = "hydra.job.config.override_dirname.exclude_keys"
    if not any(h.startswith(exclude) for h in hydra):
        # folder names: the run name plus only what varies (no `trainer.epochs=1` in every name)
        names = list(base_cfg.job.config.override_dirname.exclude_keys)
        names += [k for k in keys if k not in swept and k not in names]
        added.append(f"{exclude}=[{','.join(names)}]")
    if launcher == "ray" and not any(
        "hydra.launcher.ray.init.object_store_memory" in h for h in hydra
    ):
        # hydra-ray-launcher 1.2.2 passes object_store_memory=75 MB to ray.init, which Ray refuses
        # when joining a running cluster (address=auto); null leaves Ray's own default (hydra #2893)
        added.append("+hydra.launcher.ray.init.object_store_memory=null")
    return added


def plan(args: list[str]) -> Plan:
    """Turn the command's arguments into the sweep: its name, folder, runs and Hydra's argv."""
    study = next((a.split("=", 1)[1] for a in args if a.startswith("study=")), None)
    user = [a for a in args if not a.startswith("study=")]
    base_name, base = load_study(study) if study else ("grid", [])
    user_keys = {o.get_key_element() for o in _parse(user)}
    # the user's overrides win over the study's, key by key
    merged = [
        o for o, p in zip(base, _parse(base), strict=True) if p.get_key_element() not in user_keys
    ] + user
    parsed = _parse(merged)
    job = [o for o, p in zip(merged, parsed, strict=True) if not p.is_hydra_override()]
    hydra = [o for o, p in zip(merged, parsed, strict=True) if p.is_hydra_override()]
    keys = {p.get_key_element(): p for p in parsed if not p.is_hydra_override()}
    swept = [k for k, p in keys.items() if p.is_sweep_override()]

    # the same command maps to the same folder (so a rerun resumes); launchers do not change it
    if "sweep_name" in keys:
        name = keys["sweep_name"].get_value_element_as_str()
    else:  # the same sweep from any root, fused or not (trainer.fuse says how, not what)
        content = [o for o in job if not o.startswith(("out_dir=", "trainer.fuse="))]
        extra = [o for o in user if o in content]  # a study changed by the user's overrides
        name = base_name if study and not extra else f"{base_name}-{_short_hash(content)}"
        job.append(f"sweep_name={name}")
    if not re.fullmatch(NAME_PATTERN, name):  # a/b would nest sweep folders: refused up front
        raise ConfigError(
            f"invalid sweep_name {name!r}: one folder name of letters, digits and _.+=,- (no '/')"
        )
    job = fuse_seeds(job, keys)
    # the sweep folder and Hydra's settings; job keys are left out as they may need a swept group
    where = [o for o in job if o.split("=", 1)[0] in ("sweep_name", "out_dir")]
    base_cfg = compose_overrides(where + hydra, with_hydra=True).hydra
    sweeper = base_cfg.runtime.choices["hydra/sweeper"]
    launcher = base_cfg.runtime.choices["hydra/launcher"]
    hydra += _hydra_defaults(hydra, keys, swept, base_cfg)
    hydra.append(CALLBACK)
    p = Plan(name, Path(base_cfg.sweep.dir), job + hydra, sweeper, launcher, [], swept)
    if sweeper != "basic":
        return p  # the sweeper (e.g. optuna) picks the runs as it goes: none to list up front

    for overrides in BasicSweeper.split_arguments(_parse(job), max_batch_size=None)[0]:
        job_cfg = compose_overrides(overrides + hydra, with_hydra=True)
        for cfg, run_dir, member_overrides in members(job_cfg, overrides):
            entry = {"name": run_dir.name, "dir": str(run_dir), "overrides": member_overrides}
            try:
                check(cfg)
                entry |= status_of(run_dir)
                if lines := warnings(cfg, val_size(cfg.data)):
                    p.warnings[run_dir.name] = lines
            except ConfigError as exc:  # launched anyway: the job records the failure
                entry |= {"status": "failed", "error": str(exc), "best_val_acc": None}
            p.runs.append(entry)
    return p


def fuse_seeds(job: list[str], keys: dict[str, Override]) -> list[str]:
    """trainer.fuse=K: the seed sweep becomes a sweep of seed lists of up to K seeds each
    (seed=0,1,2,3 trainer.fuse=2 -> seed=[0,1],[2,3]); each list is one fused job (job.py)."""
    fuse = keys.get("trainer.fuse")
    if fuse is None:
        return job
    if fuse.is_sweep_override():
        raise ConfigError("trainer.fuse cannot be swept; give one value, e.g. trainer.fuse=8")
    k = int(fuse.get_value_element_as_str())
    seed = keys.get("seed")
    if k < 2 or seed is None or not seed.is_sweep_override():
        return job
    seeds = list(seed.sweep_string_iterator())
    lists = ",".join(f"[{','.join(seeds[i : i + k])}]" for i in range(0, len(seeds), k))
    return [o for o in job if _parse([o])[0].get_key_element() != "seed"] + [f"seed={lists}"]


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
    status, error = s.get("status", "failed"), s.get("error")
    if status == "running" and not folder.is_locked(run_dir):
        status = "interrupted"  # its process died
    if status == "interrupted":
        error = "interrupted: rerun the same sweep command to resume it from last.pt"
    return {"status": status, "error": error, "best_val_acc": s.get("best_val_acc")}


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


def write_index(p: Plan, command: str) -> dict[str, Any]:
    """The initial sweep.json: every planned run, plus runs an earlier search already added."""

    def change(index: dict[str, Any]) -> None:
        planned = {r["name"] for r in p.runs}
        old = [r | status_of(Path(r["dir"]), r) for r in index["runs"] if r["name"] not in planned]
        index.clear()  # rebuilt whole, in a readable key order
        index.update(
            sweep_name=p.name,
            sweep_dir=str(p.dir),
            command=command,
            sweeper=p.sweeper,
            launcher=p.launcher,
            runs=p.runs + old,
        )

    return _update_index(p.dir, change)


def refresh_index(sweep_dir: Path) -> dict[str, Any]:
    """Re-read every run folder's summary.json into sweep.json (at the end of a sweep)."""

    def change(index: dict[str, Any]) -> None:
        index["runs"] = [r | status_of(Path(r["dir"]), r) for r in index["runs"]]

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


def _pick_gpu(run_dir: Path) -> FileLock | None:
    """trainer.device=auto on a machine with several GPUs: one free GPU per parallel job.

    Local parallel launchers (joblib, submitit_local) run jobs side by side on one machine; a
    lock file per GPU in the sweep folder hands each running job its own GPU (the current CUDA
    device, which `cuda` means in train.py). One GPU or none: nothing to choose.
    """
    import torch

    n = torch.cuda.device_count()
    if n < 2:
        return None
    for i in range(n):
        slot = FileLock(run_dir.parent / f".gpu{i}.lock")
        try:
            slot.acquire(timeout=0)
        except Timeout:
            continue
        torch.cuda.set_device(i)
        return slot
    return None  # more parallel jobs than GPUs: share the current one


class Tracker(Callback):
    """Hydra callback, run inside each job's process: keeps the job's sweep.json entry current
    (and, with trainer.device=auto and several GPUs, gives the job a GPU of its own)."""

    _gpu: FileLock | None = None

    def _record(self, run_dir: Path, overrides: list[str], status: dict[str, Any]) -> None:
        entry = {"name": run_dir.name, "dir": str(run_dir), "overrides": overrides} | status

        def change(index: dict[str, Any]) -> None:
            for i, r in enumerate(index["runs"]):
                if r["name"] == entry["name"]:
                    index["runs"][i] = r | entry
                    return
            index["runs"].append(entry)  # a run the sweeper chose as it went (optuna)

        _update_index(run_dir.parent, change)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        for _, run_dir, overrides in members(config, list(config.hydra.overrides.task)):
            if status_of(run_dir)["status"] in folder.FINAL:  # a finished run is skipped as it is
                continue
            running = {"status": "running", "error": None, "best_val_acc": None}
            self._record(run_dir, overrides, running | {"logs": _logs(run_dir)})
            if config.trainer.device == "auto" and self._gpu is None:
                self._gpu = _pick_gpu(run_dir)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if self._gpu is not None:
            self._gpu.release()
            self._gpu = None
        err = job_return.return_value if job_return.status.name == "FAILED" else None
        fallback = {"status": "failed", "error": f"{type(err).__name__}: {err}"} if err else None
        for _, run_dir, overrides in members(config, list(config.hydra.overrides.task)):
            self._record(run_dir, overrides, status_of(run_dir, fallback))


# ---- reporting --------------------------------------------------------------------------------
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


def failures(index: dict[str, Any]) -> list[str]:
    """One line per failed or diverged run, naming where its logs are."""
    lines = []
    for r in index["runs"]:
        if r["status"] in BAD:
            error = r.get("error") or "non-finite loss (try a smaller optim.lr)"
            logs = ", ".join(r.get("logs") or [str(Path(r["dir"]) / folder.LOG)])
            lines.append(f"{r['name']}: {r['status']}: {error} (logs: {logs})")
    return lines
