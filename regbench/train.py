"""The Hydra app: one run = claim a run folder, train with the one loop, write metrics and checkpoints."""

from __future__ import annotations

import math
import random
import sys
import time
import traceback
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from torch import nn

from regbench import data, models, runs
from regbench.config import CONF_DIR, ConfigError, run_name, validate

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


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic


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


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int, amp
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in eval mode (dropout off, batch norm on running statistics)."""
    model.eval()
    loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    for i in range(0, len(x), bs):
        with amp:
            out = model(x[i : i + bs]).float()
        loss += F.cross_entropy(out, y[i : i + bs], reduction="sum")
        correct += (out.argmax(1) == y[i : i + bs]).sum()
    return loss.item() / len(x), correct.item() / len(x)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(s: dict[str, Any]) -> None:
    random.setstate((s["python"][0], tuple(s["python"][1]), s["python"][2]))
    np.random.set_state((s["numpy"][0], s["numpy"][1].numpy(), *s["numpy"][2:]))
    torch.set_rng_state(s["torch"])
    if s["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


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
def fit(cfg: DictConfig, d: data.Splits, run_dir: Path, log) -> dict[str, Any]:
    """Train cfg's model on the splits; write metrics.csv, best.pt, last.pt; return the summary."""
    start = time.perf_counter()
    tc, reg = cfg.trainer, cfg.reg
    device = d.x_train.device
    amp = autocast(device, tc.precision)
    seed_everything(cfg.seed, tc.deterministic)
    model = models.build(cfg, d.shape, d.num_classes).to(device)
    weights = models.decayed(model)
    opt = make_optimizer(cfg.optim, model)
    n, bs = len(d.x_train), tc.batch_size
    per_epoch = n // bs + (
        n % bs >= 2
    )  # a last batch of one sample would break batch norm: skip it
    sched = make_schedule(cfg.sched, opt, tc.epochs * per_epoch, per_epoch)
    smooth = reg.labelsmooth.eps if "labelsmooth" in reg else 0.0
    es = reg.get("earlystop")
    monitor = es.monitor if es else "val_acc"
    sign = -1.0 if monitor == "val_loss" else 1.0  # compare "higher is better" on sign * metric
    n_fit = min(n, 10_000)  # train metrics: clean, eval mode, on a fixed training subset

    rows: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": 0, "score": -math.inf}
    bad_epochs, prior, status = 0, 0.0, "completed"  # prior: wall seconds before a resume
    last = run_dir / "last.pt"
    if last.exists():
        ck = runs.load_checkpoint(last)
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            if sched is not None:
                sched.load_state_dict(ck["schedule"])
            rows, best, bad_epochs, prior = ck["rows"], ck["best"], ck["bad_epochs"], ck["wall"]
            set_rng_state(ck["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            # loads, but from another model or program: one line naming the file, not a traceback
            raise ConfigError(
                f"checkpoint {last} does not fit this run ({type(exc).__name__}); "
                "delete it to start the run afresh"
            ) from None
        log(f"resumed from {last} after epoch {len(rows)}")
    params = sum(p.numel() for p in model.parameters())
    progress = _progress(tc.progress)

    for epoch in range(len(rows) + 1, tc.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        perm = torch.randperm(n, device=device)
        task = (
            progress.add_task(f"epoch {epoch}/{tc.epochs}", total=per_epoch, info="")
            if progress
            else None
        )
        if progress:
            progress.start()
        for i in range(per_epoch):
            idx = perm[i * bs : (i + 1) * bs]
            x, y = d.x_train[idx], d.y_train[idx]
            if "aug" in reg:
                x = data.augment(x, reg.aug)
            with amp:
                out = model(x)
            loss = F.cross_entropy(out.float(), y, label_smoothing=smooth) + penalty(
                reg, weights, n
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if (
                "wd" in reg
            ):  # decoupled: shrink weights directly, outside the gradient (AdamW-style)
                lr = opt.param_groups[0]["lr"]
                with torch.no_grad():
                    torch._foreach_mul_(weights, 1 - lr * reg.wd.weight_decay)
            if sched is not None:
                sched.step()
            loss_sum += loss.detach()
            if progress:
                progress.update(task, advance=1)
        if progress:
            progress.remove_task(task)
            progress.stop()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        train_loss, train_acc = evaluate(
            model, d.x_train[:n_fit], d.y_train[:n_fit], tc.eval_batch_size, amp
        )
        val_loss, val_acc = evaluate(model, d.x_val, d.y_val, tc.eval_batch_size, amp)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": opt.param_groups[0]["lr"],
            "seconds": round(seconds, 4),
            "samples_per_s": round(per_epoch * bs / seconds, 1),
        }
        rows.append(row)
        log(
            f"epoch {epoch:3d}/{tc.epochs}  train loss {train_loss:.4f} acc {train_acc:.4f}  "
            f"val loss {val_loss:.4f} acc {val_acc:.4f}  {row['samples_per_s']:.0f} samples/s"
        )
        if not (math.isfinite(loss_sum.item()) and math.isfinite(val_loss)):
            status = "diverged"
            log(f"loss is not finite at epoch {epoch}: the run diverged (try a smaller optim.lr)")
            runs.write_metrics(run_dir, rows)
            break
        score = sign * row[monitor]
        if score > best["score"] + (es.min_delta if es else 0.0):
            best, bad_epochs = {"epoch": epoch, "score": score, **row}, 0
            runs.save_checkpoint(run_dir / "best.pt", {"model": model.state_dict(), "epoch": epoch})
        else:
            bad_epochs += 1
        # last.pt before metrics.csv: a kill between the two leaves rows a resume rewrites identically
        runs.save_checkpoint(
            run_dir / "last.pt",
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "schedule": sched.state_dict() if sched is not None else None,
                "rows": rows,
                "best": best,
                "bad_epochs": bad_epochs,
                "wall": prior + time.perf_counter() - start,
                "rng": rng_state(),
            },
        )
        runs.write_metrics(run_dir, rows)
        if es and bad_epochs >= es.patience:
            status = "early_stopped"
            log(
                f"early stop: no {monitor} improvement for {es.patience} epochs; best epoch {best['epoch']}"
            )
            break

    summary: dict[str, Any] = {
        "status": status,
        "run_name": run_dir.name,
        "best_epoch": best.get("epoch") or None,
        "best_val_acc": best.get("val_acc"),
        "best_val_loss": best.get("val_loss"),
        "test_acc": None,
        "test_loss": None,
        "final_train_acc": rows[-1]["train_acc"] if rows else None,
        "train_acc_at_best": best.get("train_acc"),
        "gen_gap": best["train_acc"] - best["val_acc"] if "train_acc" in best else None,
        "epochs_run": len(rows),
        "tested": None,
        "wall_seconds": None,
        "params": params,
        "device": str(device),
        "torch_version": torch.__version__,
        "seed": cfg.seed,
        "error": None,
    }
    if status != "diverged":
        # the test split is touched once: on the best weights with early stopping, else the last ones
        if es:
            model.load_state_dict(runs.load_checkpoint(run_dir / "best.pt")["model"])
        summary["test_loss"], summary["test_acc"] = evaluate(
            model, d.x_test, d.y_test, tc.eval_batch_size, amp
        )
        summary["tested"] = "best" if es else "last"
    summary["wall_seconds"] = round(prior + time.perf_counter() - start, 2)
    return summary


# ---- one run, as Hydra calls it -----------------------------------------------------------------
def _summary_table(summary: dict[str, Any], run_dir: Path) -> Table:
    t = Table(title=str(run_dir), show_header=False, title_justify="left")
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
        d = data.load(cfg.data, resolve_device(cfg.trainer.device))
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
        try:
            summary = fit(cfg, d, run_dir, log)
        except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C; submitit requeued a SLURM job
            stopped = runs.stop_reason(exc)
            log(stopped)
            runs.mark_status(run_dir, "interrupted", stopped)
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
    if not multirun:
        console.print(_summary_table(summary, run_dir))
        if summary["status"] == "diverged":
            _fail(f"run diverged (non-finite loss); see {run_dir / 'metrics.csv'}", 1)
    return summary["best_val_acc"] if summary["best_val_acc"] is not None else math.nan


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def hydra_app(cfg: DictConfig) -> float:
    return run(cfg)
