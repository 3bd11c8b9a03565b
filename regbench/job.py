"""The Hydra task: one run (solo.run), or a job of several seeds, `seed=[0,1,2,3]`.

A job's members are the runs those seeds make, each in the run folder its solo run would have
(same name, same config.yaml). They are trained `trainer.fuse` at a time as one fused model
(fuse.py); the data are loaded once per job. Members that have done different numbers of epochs
(a job killed after some stopped early, or some finished) cannot move in lock-step: they are
grouped by the epochs done.
"""

from __future__ import annotations

import math
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from regbench import data, fuse, runs, solo, train
from regbench.config import CONF_DIR, FUSED_DIR, ConfigError, run_name
from regbench.pitfalls import warnings
from regbench.schema import validate
from regbench.train import Member, console, err_console


def fusion_warnings(cfg: DictConfig, device: torch.device) -> list[str]:
    """Where fusing does not pay, measured (benchmarks/README.md): conv nets on a CPU."""
    if cfg.trainer.fuse > 1 and device.type == "cpu" and cfg.model.name != "mlp":
        return [
            f"trainer.fuse={cfg.trainer.fuse} with model={cfg.model.name} on the CPU: grouped "
            "convolutions run below dense ones there, so the fused job is slower than its runs one "
            "after another (benchmarks/README.md); fusion pays for mlp on a CPU and on a GPU"
        ]
    return []


def _epochs_done(run_dir: Path) -> int:
    try:
        return len(runs.load_checkpoint(run_dir / "last.pt")["rows"])
    except (ConfigError, KeyError, TypeError):
        return 0 if not (run_dir / "last.pt").exists() else -1  # fit reports a bad one


def groups(members: list[Member], k: int, same_data: bool) -> list[list[Member]]:
    """Lock-step groups of at most k members: same epochs done, and the same data split."""
    by_epochs: dict[int, list[Member]] = {}
    for m in members:
        by_epochs.setdefault(_epochs_done(m.run_dir), []).append(m)
    size = k if same_data else 1
    return [g[i : i + size] for g in by_epochs.values() for i in range(0, len(g), size)]


class Job:
    """The members of one job: claims their folders, trains them in groups, reports them."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        self.members = fuse.member_configs(cfg)
        self.dirs: list[Path | None] = [None] * len(self.members)
        if self.multirun:
            hc = HydraConfig.get()
            self.dirs = [Path(hc.sweep.dir) / run_name(m, hc.job.override_dirname) for m in self.members]  # fmt: skip
        self.summaries: dict[Path, dict[str, Any]] = {}
        self.logfiles: dict[Path, IO[str]] = {}

    def fail(self, msg: str, run_dir: Path | None = None) -> None:
        """A bad input: one line and exit 2 for `regbench train`; in a sweep, recorded per run."""
        if not self.multirun:
            solo.fail(msg, 2)
        for d in [run_dir] if run_dir else self.dirs:
            err_console.print(f"error: {d.name}: {msg}", soft_wrap=True)
            d.mkdir(parents=True, exist_ok=True)  # as Hydra makes a solo job's folder
            runs.record_failure(d, msg)

    def claim(self, m: DictConfig, job_dir: Path | None, stack: ExitStack) -> Member | None:
        """Lock the member's run folder; None when it is finished or cannot be had."""
        try:
            if job_dir is not None:
                run_dir, held = job_dir, runs.claim_sweep_job(job_dir, m)
            else:
                name = m.name or run_name(m)
                run_dir, held = runs.claim(Path(m.out_dir), name, m, m.resume)
        except ConfigError as exc:
            self.fail(str(exc), job_dir)
            return None
        stack.callback(held.release)
        logfile = stack.enter_context(open(run_dir / "train.log", "a"))
        self.logfiles[run_dir] = logfile

        def log(line: str) -> None:
            logfile.write(line + "\n")
            logfile.flush()
            console.print(f"[dim]{run_dir.name}[/dim]  {line}", soft_wrap=True)

        previous = runs.read_summary(run_dir)
        if previous and previous.get("status") in runs.FINAL:
            log(f"already finished ({previous['status']}): skipped")
            self.summaries[run_dir] = previous
            return None
        runs.mark_status(run_dir, "running")
        fused = f"trainer.fuse={self.cfg.trainer.fuse}"
        log(f"run folder {run_dir} (job of seeds {list(self.cfg.seed)}, {fused})")
        for line in warnings(m, data.val_size(m.data)):
            logfile.write(f"warning: {line}\n")

        def done(summary: dict[str, Any]) -> None:
            runs.write_summary(run_dir, summary)
            self.summaries[run_dir] = summary

        return Member(m, run_dir, log, done)

    def train(self, group: list[Member], d: data.Splits) -> None:
        """fit() the group; a crash marks its unfinished members failed, Ctrl-C interrupted."""
        try:
            train.fit(group, d)
        except KeyboardInterrupt:
            for m in group:
                if m.run_dir not in self.summaries:
                    runs.mark_status(m.run_dir, "interrupted", "interrupted; rerun to continue")
            raise
        except Exception as exc:  # ConfigError included: a bad checkpoint is found only here
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not isinstance(exc, ConfigError):
                line = f"{type(exc).__name__}: {line}"
            for m in group:
                if m.run_dir not in self.summaries:
                    self.logfiles[m.run_dir].write(traceback.format_exc())
                    runs.mark_status(m.run_dir, "failed", line)
                    err_console.print(f"error: {m.run_dir.name}: {line}", soft_wrap=True)

    def run(self) -> float:
        cfg = self.cfg
        try:
            validate(cfg)
            device = train.resolve_device(cfg.trainer.device)
            for m in self.members:  # the run folder's config must be a valid solo config
                validate(m)
            same_data = cfg.data.split_seed is not None  # else each seed has its own split
            d = data.load(cfg.data, device, self.members[0].seed) if same_data else None
        except ConfigError as exc:
            self.fail(str(exc))
            return math.nan
        for line in warnings(cfg, data.val_size(cfg.data)) + fusion_warnings(cfg, device):
            err_console.print(f"warning: {line}", soft_wrap=True)
        with ExitStack() as stack:
            todo = [self.claim(m, j, stack) for m, j in zip(self.members, self.dirs, strict=True)]
            for group in groups([m for m in todo if m], cfg.trainer.fuse, same_data):
                self.train(group, d or data.load(cfg.data, device, group[0].cfg.seed))
        return self.report()

    def report(self) -> float:
        """The summaries (tables for `regbench train`); the members' mean best val acc."""
        if self.multirun:  # Hydra made the job a hidden folder (.fused/...) of its own: remove it
            out = Path(HydraConfig.get().runtime.output_dir)
            for empty in (out, out.parent) if out.parent.name == FUSED_DIR else ():
                try:
                    empty.rmdir()
                except OSError:  # another job's folder is still in it
                    pass
        if not self.multirun:
            for run_dir, s in self.summaries.items():
                console.print(f"summary of {run_dir}", soft_wrap=True)
                console.print(solo.summary_table(s))
            if any(s.get("status") in ("diverged", "failed") for s in self.summaries.values()):
                solo.fail("a run of the job diverged or failed; see its train.log", 1)
            if len(self.summaries) < len(self.members):
                solo.fail("a run of the job did not finish; see the lines above", 1)
        accs = [a for s in self.summaries.values() if isinstance(a := s.get("best_val_acc"), float)]
        return sum(accs) / len(accs) if accs else math.nan


def run(cfg: DictConfig) -> float:
    """A list-valued seed is a job of several runs; anything else is one run."""
    return Job(cfg).run() if OmegaConf.is_list(cfg.seed) else solo.run(cfg)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def hydra_app(cfg: DictConfig) -> float:
    return run(cfg)
