"""The Hydra app: one run = claim a run folder, train with the one loop, write metrics and checkpoints."""

from __future__ import annotations

import math
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any

import hydra
import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from torch import nn

from regbench import data, diagnostics, loggers, models, runs, streams
from regbench.config import CONF_DIR, ConfigError, run_name, validate, warnings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


# ---- set-up: device, precision, seeds, optimizer, schedule --------------------------------------
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.device={name} but CUDA is not available; use trainer.device=auto"
        )
    return torch.device(name)


def autocast(device: torch.device, precision: str):
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    # bf16 autocast on CPUs is several times slower than fp32: "auto" keeps the CPU in fp32
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def make_optimizer(cfg: DictConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.name in ("sgd", "momentum", "nesterov"):
        m = cfg.get("momentum", 0.0)
        return torch.optim.SGD(
            model.parameters(), cfg.lr, momentum=m, nesterov=cfg.name == "nesterov"
        )
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), cfg.lr, alpha=cfg.alpha, eps=cfg.eps)
    if cfg.name == "adam":
        return torch.optim.Adam(model.parameters(), cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    decay = {id(p) for p in models.decayed(model)}  # adamw: weights decay, biases and norms do not
    groups = [
        {
            "params": [p for p in model.parameters() if id(p) in decay],
            "weight_decay": cfg.weight_decay,
        },
        {"params": [p for p in model.parameters() if id(p) not in decay], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def make_schedule(cfg: DictConfig, opt: torch.optim.Optimizer, total: int, per_epoch: int):
    """A per-batch learning-rate schedule over `total` batches (None: constant)."""
    if cfg.name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, cfg.step_epochs * per_epoch, cfg.gamma)
    if cfg.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, total, cfg.min_lr)
    if cfg.name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, cfg.max_lr, total, pct_start=cfg.pct_start)
    return None


def penalty(reg: DictConfig, weights: list[nn.Parameter], n_train: int) -> torch.Tensor | float:
    """L2: lam/(2N) sum w^2 and L1: lam/N sum |w| over conv/linear weights, N = training examples."""
    total: torch.Tensor | float = 0.0
    if "l2" in reg:
        total = total + reg.l2.lam / (2 * n_train) * sum((w.float() ** 2).sum() for w in weights)
    if "l1" in reg:
        total = total + reg.l1.lam / n_train * sum(w.float().abs().sum() for w in weights)
    return total


def _progress(mode: str) -> Progress | None:
    if mode == "none" or (mode == "auto" and not console.is_terminal) or mode == "plain":
        return None
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=True,
    )


# ---- the loop -----------------------------------------------------------------------------------
class Step:
    """One optimisation step: loss (+ penalties), backward, update, then the constraints that act
    on the weights directly (decoupled weight decay, max-norm) and the learning-rate schedule."""

    def __init__(self, cfg: DictConfig, model: nn.Module, n_train: int, per_epoch: int) -> None:
        self.reg, self.n = cfg.reg, n_train
        self.weights = models.decayed(model)
        self.opt = make_optimizer(cfg.optim, model)
        total = cfg.trainer.epochs * per_epoch
        self.sched = make_schedule(cfg.sched, self.opt, total, per_epoch)
        self.smooth = self.reg.labelsmooth.eps if "labelsmooth" in self.reg else 0.0

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        reg = self.reg
        loss = F.cross_entropy(out.float(), y, label_smoothing=self.smooth)
        loss = loss + penalty(reg, self.weights, self.n)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            if (
                "wd" in reg
            ):  # decoupled: shrink weights directly, outside the gradient (AdamW-style)
                lr = self.opt.param_groups[0]["lr"]
                torch._foreach_mul_(self.weights, 1 - lr * reg.wd.weight_decay)
            if "maxnorm" in reg:  # each unit's incoming weights (dim 0: an output unit / filter)
                for w in self.weights:
                    w.copy_(torch.renorm(w, 2, 0, reg.maxnorm.c))
        if self.sched is not None:
            self.sched.step()
        return loss.detach()

    def state_dict(self) -> dict[str, Any]:
        sched = self.sched.state_dict() if self.sched is not None else None
        return {"optimizer": self.opt.state_dict(), "schedule": sched}

    def load(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(state["schedule"])


def fit(
    cfg: DictConfig,
    d: data.Splits,
    run_dir: Path,
    log: Callable[[str], None],
    on_epoch: Callable[[dict[str, Any]], None] = lambda row: None,
) -> dict[str, Any]:
    """Train cfg's model on the splits; write metrics.csv, best.pt, last.pt; return the summary."""
    start = time.perf_counter()
    tc, reg = cfg.trainer, cfg.reg
    device = d.x_train.device
    amp = autocast(device, tc.precision)
    torch.use_deterministic_algorithms(tc.deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not tc.deterministic
    rng = streams.Streams(cfg, device)
    model = models.build(cfg, d.shape, d.num_classes).to(device)
    rng.start_dropout()  # after build: the global generator now draws dropout masks only
    n, bs = len(d.x_train), tc.batch_size
    per_epoch = n // bs + (n % bs >= 2)  # a last batch of one sample would break batch norm
    step = Step(cfg, model, n, per_epoch)
    record = runs.Record(reg.get("earlystop"))
    if (run_dir / "last.pt").exists():
        record.resume(
            run_dir / "last.pt", model, lambda ck: (step.load(ck), rng.restore(ck["rng"]))
        )
        log(f"resumed from {run_dir / 'last.pt'} after epoch {len(record.rows)}")
    progress = _progress(tc.progress)
    if progress:
        progress.start()
    for epoch in range(len(record.rows) + 1, tc.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        perm = rng.permutation(n, device)
        task = (
            progress.add_task(f"epoch {epoch}/{tc.epochs}", total=per_epoch, info="")
            if progress
            else None
        )
        for i in range(per_epoch):
            idx = perm[i * bs : (i + 1) * bs]
            x, y = d.x_train[idx], d.y_train[idx]
            if "aug" in reg:
                x = data.augment(x, reg.aug, rng.aug)
            with amp:
                out = model(x)
            loss_sum += step(out, y)
            if progress:
                progress.update(task, advance=1)
        if progress:
            progress.remove_task(task)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        row = epoch_row(model, d, step, tc.eval_batch_size, amp, epoch)
        row |= {"seconds": round(seconds, 4), "samples_per_s": round(per_epoch * bs / seconds, 1)}
        go_on = record.add(row, diverged=not math.isfinite(loss_sum.item()))
        on_epoch(row)  # trainer.loggers
        log(
            f"epoch {epoch:3d}/{tc.epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
            f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  {row['samples_per_s']:.0f} samples/s"
        )
        wall = time.perf_counter() - start
        record.save(run_dir, model, {**step.state_dict(), "rng": rng.state()}, wall)
        if not go_on:
            log(stop_reason(record, epoch))
            break
    if progress:
        progress.stop()
    return finish(cfg, d, model, step, record, run_dir, amp, time.perf_counter() - start)


def stop_reason(record: runs.Record, epoch: int) -> str:
    if record.status == "diverged":
        return f"loss is not finite at epoch {epoch}: the run diverged (try a smaller optim.lr)"
    return (
        f"early stop: no {record.monitor} improvement for {record.es.patience} epochs; "
        f"best epoch {record.best['epoch']}"
    )


def epoch_row(model: nn.Module, d: data.Splits, step: Step, bs: int, amp, epoch: int) -> dict:
    """The epoch's metrics.csv row: clean (eval-mode) metrics on a fixed training subset of up to
    10,000 examples and on the validation split, the weights' norm, the learning rate."""
    n_fit = min(len(d.x_train), 10_000)
    train = diagnostics.evaluate(model, d.x_train[:n_fit], d.y_train[:n_fit], bs, amp)
    val_loss, val_acc, val_ece = diagnostics.evaluate(model, d.x_val, d.y_val, bs, amp)
    return {
        "epoch": epoch,
        "train_loss": train[0],
        "train_acc": train[1],
        "val_loss": val_loss,
        "val_acc": val_acc,
        "gen_gap": train[1] - val_acc,
        "val_ece": val_ece,
        "weight_norm": diagnostics.weight_norm(step.weights),
        "lr": step.opt.param_groups[0]["lr"],
    }


def finish(
    cfg: DictConfig,
    d: data.Splits,
    model: nn.Module,
    step: Step,
    record: runs.Record,
    run_dir: Path,
    amp,
    seconds: float,
) -> dict[str, Any]:
    """Test once (best weights with early stopping, else the last ones) and build the summary."""
    s = record.summary(run_dir, cfg.seed, seconds)
    s |= {"params": sum(p.numel() for p in model.parameters()), "device": str(d.x_train.device)}
    if s["status"] != "diverged":
        if record.es:
            model.load_state_dict(runs.load_checkpoint(run_dir / "best.pt")["model"])
        bs = cfg.trainer.eval_batch_size
        s["test_loss"], s["test_acc"], s["test_ece"] = diagnostics.evaluate(
            model, d.x_test, d.y_test, bs, amp
        )
        s["tested"] = "best" if record.es else "last"
        s["weight_norm"] = diagnostics.weight_norm(step.weights)
    return s


# ---- one run, as Hydra calls it -----------------------------------------------------------------
def _summary_table(summary: dict[str, Any]) -> Table:
    t = Table(show_header=False)  # the folder goes on its own line: a title wraps mid-word
    for key in (
        "status",
        "best_epoch",
        "epochs_run",
        "best_val_acc",
        "test_acc",
        "gen_gap",
        "wall_seconds",
        "params",
        "device",
    ):
        v = summary.get(key)
        t.add_row(key, f"{v:.4f}" if isinstance(v, float) and key != "wall_seconds" else str(v))
    return t


def _fail(msg: str, code: int) -> None:
    err_console.print(f"error: {msg}", soft_wrap=True)
    sys.exit(code)


def run(cfg: DictConfig) -> float:
    """One run; returns the best validation accuracy (what sweepers maximise; NaN if none).

    A single run (`regbench train`) reports errors as one line and a non-zero exit code. Inside a
    multirun (`regbench sweep`) a failing job must never stop the others, so errors are recorded
    in the job's summary.json and the job returns NaN instead of raising.
    """
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    job_dir = Path(HydraConfig.get().runtime.output_dir) if multirun else None
    try:
        validate(cfg)
        if job_dir is not None:
            previous = runs.read_summary(job_dir)
            if previous and previous.get("status") in runs.FINAL:  # a rerun skips finished jobs
                console.print(f"[dim]{job_dir.name}[/dim]  already {previous['status']}: skipped")
                return previous.get("best_val_acc") or math.nan
        # data before the run folder: a missing dataset leaves no folder behind
        d = data.load(cfg.data, resolve_device(cfg.trainer.device), cfg.seed)
        if job_dir is not None:
            run_dir, held = job_dir, runs.claim_sweep_job(job_dir, cfg)
        else:
            out = Path(cfg.out_dir)
            run_dir, held = runs.claim(out, cfg.name or run_name(cfg), cfg, cfg.resume)
    except ConfigError as exc:
        if job_dir is None:
            _fail(str(exc), 2)
        err_console.print(f"error: {job_dir.name}: {exc}", soft_wrap=True)
        runs.record_failure(job_dir, str(exc))
        return math.nan

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
            summary = fit(cfg, d, run_dir, log, tracker.epoch)
        except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C; submitit requeued a SLURM job
            stopped = runs.stop_reason(exc)
            log(stopped)
            runs.mark_status(run_dir, "interrupted", stopped)
            if not multirun and isinstance(exc, KeyboardInterrupt):  # in-process callers (tests)
                task = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
                hint = runs.resume_command(run_dir, list(task))
                err_console.print(f"interrupted: continue with {hint}", soft_wrap=True)
            raise
        except Exception as exc:  # ConfigError included: a bad checkpoint is found only here
            stopped = runs.stop_reason(exc)  # SLURM's time limit: interrupted, not failed
            if stopped:
                log(stopped)
                runs.mark_status(run_dir, "interrupted", stopped)
                err_console.print(f"error: {run_dir.name}: {stopped}", soft_wrap=True)
                return math.nan
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not isinstance(exc, ConfigError):
                line = f"{type(exc).__name__}: {line}"
                logfile.write(traceback.format_exc())
            runs.mark_status(run_dir, "failed", line)
            if not multirun:
                _fail(
                    f"{line} (log: {run_dir / 'train.log'})",
                    2 if isinstance(exc, ConfigError) else 1,
                )
            err_console.print(f"error: {run_dir.name}: {line}", soft_wrap=True)
            return math.nan
        runs.write_summary(run_dir, summary)
        tracker.finish(summary)
    if not multirun:
        console.print(f"summary of {run_dir}", soft_wrap=True)
        console.print(_summary_table(summary))
        if summary["status"] == "diverged":
            _fail(f"run diverged (non-finite loss); see {run_dir / 'metrics.csv'}", 1)
    return summary["best_val_acc"] if summary["best_val_acc"] is not None else math.nan


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def hydra_app(cfg: DictConfig) -> float:
    return run(cfg)
