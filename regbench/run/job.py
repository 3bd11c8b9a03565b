"""The job: what `regbench train` and every sweep job run. One run is a job of one member;
`seed=[0,1,2,3]` is a job of four, trained `trainer.fuse` at a time as one fused model (fuse.py),
else one after another. Each member writes the run folder its solo run would (same name, same
config.yaml); the data are loaded once per job.

This is the one place that claims run folders, opens each member's loggers, marks statuses (the
same status for the same event, solo or fused) and turns failures into one line: an `error:` line
and an exit code for `regbench train`, the run folder's summary.json in a sweep, where a failing
run must never stop the others.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import traceback
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import IO, Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from regbench import data, disk, extend, folder, models, transfer
from regbench.compose import check
from regbench.config import CONF_DIR, ConfigError
from regbench.datasets import val_size
from regbench.naming import FUSED_DIR, member_configs, run_name
from regbench.pitfalls import fusion_warnings, warnings
from regbench.record import Summary
from regbench.run import checkpoint, loop, threads
from regbench.run.device import resolve_device
from regbench.run.display import console, fail, say, summary_table, warn
from regbench.run.loggers import open_loggers
from regbench.run.loop import Member


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, systemd, Docker, most schedulers): stopped like Ctrl-C, resumable."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


def stop_on_sigterm() -> None:
    """SIGTERM raises Terminated in this process (its main thread: where Python runs handlers)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


def stop_line(exc: BaseException) -> str:
    """The error line of a run stopped from outside, to be resumed from last.pt (else '').

    Under SLURM, submitit catches the signal sent `signal_delay_s` before the time limit (or on
    preemption) in the middle of the training loop: it requeues the job and raises SystemExit,
    or, with no requeue left (`hydra.launcher.max_num_timeout`), raises UncompletedJobError.
    """
    if isinstance(exc, Terminated):
        return "terminated (SIGTERM); rerun with resume=true to continue"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; rerun with resume=true to continue"
    if "submitit" in sys.modules:  # imported only inside submitit jobs
        from submitit.core.utils import UncompletedJobError

        if isinstance(exc, SystemExit):
            return "stopped by SLURM (time limit or preemption) and requeued: resumes from last.pt"
        if isinstance(exc, UncompletedJobError):
            return (
                "stopped at its SLURM time limit (hydra.launcher.timeout_min) with no requeue left "
                "(hydra.launcher.max_num_timeout); rerun the same sweep command to resume it"
            )
    return ""


def slurm_job() -> str:
    """' (SLURM job 12_3, restart 1)' when SLURM runs this process (12_3: array 12, task 3), else ''."""
    env = os.environ
    job = env.get("SLURM_JOB_ID")
    if "SLURM_ARRAY_JOB_ID" in env:
        job = f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID')}"
    if job is None:
        return ""
    restarts = int(env.get("SLURM_RESTART_COUNT", "0"))
    return f" (SLURM job {job}{f', restart {restarts}' if restarts else ''})"


def _epochs_done(run_dir: Path) -> int:
    try:
        return len(checkpoint.load(run_dir / folder.LAST)["rows"])
    except (ConfigError, KeyError, TypeError):
        return 0 if not (run_dir / folder.LAST).exists() else -1  # fit reports a bad one


def groups(members: list[Member], k: int, same_data: bool) -> list[list[Member]]:
    """Lock-step groups of at most k members: same epochs done, and the same data split (members
    that have done different numbers of epochs, e.g. some stopped early, cannot move together)."""
    by_epochs: dict[int, list[Member]] = {}
    for m in members:
        by_epochs.setdefault(_epochs_done(m.run_dir), []).append(m)
    size = k if same_data else 1
    return [g[i : i + size] for g in by_epochs.values() for i in range(0, len(g), size)]


class Job:
    """The members of one job: claims their folders, trains them in groups, reports them."""

    def __init__(self, cfg: DictConfig, task: list[str] | None = None) -> None:
        hc = HydraConfig.get() if HydraConfig.initialized() else None
        self.cfg = cfg
        self.multirun = hc is not None and hc.mode == RunMode.MULTIRUN
        self.launcher = hc.launcher if hc and self.multirun else None  # joblib's n_jobs share cores
        # Hydra's basic launcher runs each job in the sweep command's process: its exit is the sweep's
        self.in_command = "BasicLauncher" in str(getattr(self.launcher, "_target_", ""))
        self.task = list(task if task is not None else (hc.overrides.task if hc else []))
        self.members = member_configs(cfg)
        self.single = len(self.members) == 1 and not self.multirun  # errors end the command
        self.prefixed = self.multirun or len(self.members) > 1  # lines carry the run's name
        self.sweep = str(cfg.sweep_name) if self.multirun else None
        self.dirs: list[Path | None] = [None] * len(self.members)
        if hc is not None and self.multirun:
            d, dirname = Path(hc.sweep.dir), hc.job.override_dirname
            self.dirs = [d / run_name(m, dirname) for m in self.members]
        self.summaries: dict[Path, Summary] = {}
        self.logfiles: dict[Path, IO[str]] = {}
        self.warned: list[str] = []

    def fail(self, msg: str, run_dir: Path | None = None) -> None:
        """A bad input: one line and exit 2 for `regbench train`; in a sweep, recorded per run."""
        if not self.multirun:
            fail(msg, 2)
        for d in [run_dir] if run_dir else self.dirs:
            assert d is not None  # a sweep job knows its folders from the start
            warn("error", f"{d.name}: {msg}")
            d.mkdir(parents=True, exist_ok=True)  # as Hydra makes a solo job's folder
            folder.record_failure(d, msg)

    def run(self) -> float:
        cfg = self.cfg
        if self.multirun and all(self._finished(d) for d in self.dirs if d is not None):
            return self.report()  # a rerun of the sweep: nothing to load or claim
        try:
            device = resolve_device(cfg.trainer.device)
            threads.use(cfg.trainer.threads, self.launcher)
            same_data = cfg.data.split_seed is not None or len(self.members) == 1
            d = data.load(cfg.data, device, self.members[0].seed) if same_data else None
            if "_target_" in cfg.model:  # the user's model: built and run once, before any folder
                probe = d or data.load(cfg.data, device, self.members[0].seed)
                extend.probe_model(cfg, probe.shape, probe.num_classes)
            if cfg.transfer.name != "none":  # each member's source (its seed's), before any folder
                self._check_sources(d or data.load(cfg.data, device, self.members[0].seed))
        except ConfigError as exc:  # before any run folder: a missing dataset leaves none behind
            self.fail(str(exc))
            return math.nan
        n_val = len(d.x_val) if d is not None else val_size(cfg.data)
        self.warned = warnings(cfg, n_val) + fusion_warnings(cfg, device.type)
        one = self.dirs[0] if self.multirun and len(self.dirs) == 1 else None
        where = f"{one.name}: " if one else ""
        for line in self.warned:  # known-bad combinations: said once, not refused
            warn("warning", where + line)
        with ExitStack() as stack:
            todo = [self.claim(m, j, stack) for m, j in zip(self.members, self.dirs, strict=True)]
            for group in groups([m for m in todo if m], cfg.trainer.fuse, same_data):
                self.train(group, d or data.load(cfg.data, device, group[0].cfg.seed))
        return self.report()

    def _check_sources(self, probe: data.Splits) -> None:
        """Each member's transfer source (its seed's); ConfigError when one is bad. In a sweep, a
        member whose source failed, diverged or has not finished is skipped with one line, its
        run folder not made (the sweep's index says `skipped`), and the others go on."""
        kept = []
        for m, run_dir in zip(self.members, self.dirs, strict=True):
            with torch.random.fork_rng(devices=[]):  # the constructors' throw-away draws
                solo = models.build(m, probe.shape, probe.num_classes)
            try:
                transfer.check(m, solo)
            except transfer.Unfinished as exc:
                if run_dir is None:  # regbench train: bad input
                    raise
                warn("skipped", f"{run_dir.name}: {exc}")
                with suppress(OSError):  # the empty folder Hydra made for the job
                    run_dir.rmdir()
                continue
            kept.append((m, run_dir))
        self.members, self.dirs = [m for m, _ in kept], [j for _, j in kept]

    def _finished(self, run_dir: Path) -> bool:
        previous = folder.read_summary(run_dir)
        if previous and previous.status in folder.FINAL:
            say(f"already {previous.status}: skipped", run_dir.name)
            self.summaries[run_dir] = previous
            return True
        return False

    def claim(self, m: DictConfig, job_dir: Path | None, stack: ExitStack) -> Member | None:
        """Lock the member's run folder and open its log and loggers; None when it is finished or
        cannot be had."""
        if job_dir is not None and job_dir in self.summaries:  # skipped before the data loaded
            return None
        try:
            if job_dir is not None:
                run_dir, held = job_dir, folder.claim_sweep_job(job_dir, m)
            else:
                run_dir, held = folder.claim(Path(m.out_dir), m.name or run_name(m), m, m.resume)
        except ConfigError as exc:
            self.fail(str(exc), job_dir)
            return None
        # claim() hands over the lock acquired once; `with held` would acquire it again
        stack.callback(held.release)
        logfile = stack.enter_context(open(run_dir / folder.LOG, "a"))
        self.logfiles[run_dir] = logfile
        prefix = run_dir.name if self.prefixed else ""

        def log(line: str, short: str | None = None) -> None:
            logfile.write(line + "\n")
            logfile.flush()
            say(short if prefix and short else line, prefix)

        previous = folder.read_summary(run_dir)
        if previous and previous.status in folder.FINAL:
            status = previous.status
            said = "skipped" if job_dir else "nothing to do"
            log(f"already {status}: {said}" if job_dir else f"already finished ({status}): {said}")
            self.summaries[run_dir] = previous
            return None
        folder.mark_status(run_dir, "running")
        log(f"run folder {run_dir}{slurm_job()}{self._job_note()}")
        for line in self.warned:
            logfile.write(f"warning: {line}\n")
        tracker = stack.enter_context(open_loggers(m, run_dir, self.sweep))

        def done(summary: Summary) -> None:
            folder.write_summary(run_dir, summary)
            self.summaries[run_dir] = summary
            tracker.finish(summary.to_json())

        return Member(m, run_dir, log, done, tracker.epoch, tracker.resume)

    def _job_note(self) -> str:
        if not OmegaConf.is_list(self.cfg.seed):
            return ""
        seeds = [int(m.seed) for m in self.members]
        return f" (job of seeds {seeds}, trainer.fuse={self.cfg.trainer.fuse})"

    def train(self, group: list[Member], d: data.Splits) -> None:
        """fit() the group. Stopped from outside (Ctrl-C, SIGTERM, SLURM's time limit): its
        unfinished members are `interrupted` and the stop goes on up; any other error: `failed`."""
        try:
            loop.fit(group, d)
        except (KeyboardInterrupt, SystemExit) as exc:
            if not (why := stop_line(exc)):  # sys.exit() inside a model or dataset: a failure
                code = exc.code if isinstance(exc, SystemExit) else None
                self._failed(group, f"the run called sys.exit({code!r})", 1)
                return
            self._mark(group, "interrupted", why)
            if isinstance(exc, KeyboardInterrupt) and not self.multirun:
                warn("interrupted", f"continue with {self._resume_command(group)}")
            raise
        except Exception as exc:  # ConfigError included: a bad checkpoint is found only here
            if disk.refused(exc):  # a full disk: no line to record here; the command says it
                raise
            if why := stop_line(exc):  # SLURM's time limit with no requeue left
                self._mark(group, "interrupted", why)
                warn("error", why)
                return
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not isinstance(exc, ConfigError):
                line = f"{type(exc).__name__}: {line}"
                for m in group:
                    self.logfiles[m.run_dir].write(traceback.format_exc())
            self._failed(group, line, 2 if isinstance(exc, ConfigError) else 1)

    def _mark(self, group: list[Member], status: str, line: str) -> None:
        """The unfinished members' status; the line in their train.log (on stdout if stopped)."""
        for m in group:
            if m.run_dir not in self.summaries:
                if status == "failed":
                    self.logfiles[m.run_dir].write(line + "\n")
                else:
                    m.log(line)
                folder.mark_status(m.run_dir, status, line)

    def _failed(self, group: list[Member], line: str, code: int) -> None:
        self._mark(group, "failed", line)
        if self.single:
            fail(f"{line} (log: {group[0].run_dir / folder.LOG})", code)
        for m in group:
            warn("error", f"{m.run_dir.name}: {line}")

    def _resume_command(self, group: list[Member]) -> str:
        if len(self.members) == 1:
            return folder.resume_command(group[0].run_dir, self.task)
        kept = [o for o in self.task if not o.startswith("resume=")]
        return " ".join(["regbench", "train", *kept, "resume=true"])

    def report(self) -> float:
        """The summaries (tables for `regbench train`); the members' mean best val acc."""
        if self.multirun:  # Hydra made a fused job a hidden folder (.fused/...) of its own
            out = Path(HydraConfig.get().runtime.output_dir)
            for empty in (out, out.parent) if out.parent.name == FUSED_DIR else ():
                try:
                    empty.rmdir()
                except OSError:  # another job's folder is still in it
                    pass
        else:
            self._print_summaries()
        accs = [a for s in self.summaries.values() if isinstance(a := s.best_val_acc, float)]
        return sum(accs) / len(accs) if accs else math.nan

    def _print_summaries(self) -> None:
        for run_dir, s in self.summaries.items():
            console.print(f"summary of {run_dir}", soft_wrap=True, markup=False)
            console.print(summary_table(s))
        statuses = [s.status for s in self.summaries.values()]
        if self.single and statuses == ["diverged"]:
            (run_dir,) = self.summaries
            fail(f"run diverged (non-finite loss); see {run_dir / folder.METRICS_CSV}", 1)
        if any(s in folder.BAD for s in statuses):
            fail("a run of the job diverged or failed; see its train.log", 1)
        if len(self.summaries) < len(self.members):
            fail("a run of the job did not finish; see the lines above", 1)


def run(cfg: DictConfig, task: list[str] | None = None) -> float:
    """Check the config (the schema, then the user's code), then run it as a job; SIGTERM (a
    joblib worker's, a scheduler's) stops it like Ctrl-C: interrupted, resumable. A write the disk
    refused ends a sweep run in the command's process with `regbench train`'s one line and exit 2
    (raised, Hydra would print its own lines and start the next job on the same full disk);
    elsewhere Hydra carries the error back to the sweep command, which says it (sweep.launch)."""
    stop_on_sigterm()
    job = Job(cfg, task)
    try:
        check(cfg)
    except ConfigError as exc:
        job.fail(str(exc))
        return math.nan
    try:
        return job.run()
    except OSError as exc:
        if not (disk.refused(exc) and job.in_command):
            raise
        fail(disk.write_error(exc, HydraConfig.get().sweep.dir), 2)


def run_checked(cfg: DictConfig, task: list[str]) -> float:
    """`regbench train`: a config the command line has checked; SIGTERM stops it like Ctrl-C; a
    write the disk refused (full, read-only), wherever it happened, is one line and exit 2."""
    stop_on_sigterm()
    try:
        return Job(cfg, task).run()
    except OSError as exc:
        if not disk.refused(exc):
            raise
        fail(disk.write_error(exc, cfg.out_dir), 2)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def hydra_app(cfg: DictConfig) -> float:
    return run(cfg)
