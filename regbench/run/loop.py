"""The one loop: K members (one run, or seeds fused) trained in lock-step on the splits, each with
its metrics.csv, checkpoints and one test at the end (the job around it: job.py)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from regbench import data, diagnostics, folder, models, multitask, transfer
from regbench.config import ConfigError
from regbench.record import Summary
from regbench.run import checkpoint, fuse, streams
from regbench.run.device import autocast, deterministic, elapsed
from regbench.run.display import Bar
from regbench.run.history import Record
from regbench.run.step import Step
from regbench.seeds import source_seed, stream_value

WRITER = ThreadPoolExecutor(max_workers=32, thread_name_prefix="regbench-checkpoints")


# ---- the loop -----------------------------------------------------------------------------------
@dataclass
class Member:
    """One run of a job (a fused job has several): its config, run folder and log; `done` gets
    its summary the moment it finishes, while a fused job's other members may go on."""

    cfg: DictConfig
    run_dir: Path
    log: Callable[..., None]  # log(line, short=None): train.log gets line, a terminal short
    done: Callable[[Summary], None] = lambda summary: None
    on_epoch: Callable[[dict[str, Any]], None] = lambda row: None  # trainer.loggers
    on_resume: Callable[[list[dict[str, Any]]], None] = lambda rows: None  # likewise

    @cached_property
    def config_text(self) -> str:
        """config.yaml's text: last.pt records it, and a checkpoint of another run is refused."""
        return folder.config_yaml(self.cfg)


def fit(members: list[Member], d: data.Splits) -> list[Summary | None]:
    """Train the members (one run, or runs that differ only in seed, fused: see fuse.py) on the
    splits in lock-step; write each one's metrics.csv, best.pt, last.pt; return their summaries."""
    start = time.perf_counter()
    cfg, k = members[0].cfg, len(members)
    tc, reg, device = cfg.trainer, cfg.reg, d.x_train.device
    amp = autocast(device, tc.precision)
    deterministic(tc.deterministic, tc.compile)
    rngs = [streams.Streams(m.cfg, device) for m in members]
    solos = [models.build(m.cfg, d.shape, d.num_classes) for m in members]
    sources = [start_from(m, solo) for m, solo in zip(members, solos, strict=True)]
    fuse.start_dropout(rngs)  # after build: the global generator now draws dropout masks only
    n, bs = len(d.x_train), tc.batch_size
    per_epoch = n // bs + (n % bs >= 2)  # a last batch of one sample would break batch norm
    records = [Record(reg.get("earlystop")) for _ in members]
    saved = [resume(*a) for a in zip(members, records, solos, rngs, strict=True)]
    model, layout = prepare(cfg, solos, device)
    step = Step(cfg, model, n, per_epoch)
    load_step(step, saved, members)
    live = torch.ones(k, dtype=torch.bool, device=device)  # members still training
    aug = data.knobs(reg.aug) if "aug" in reg else None  # plain numbers: read every step
    noise = [r.noise for r in rngs]  # reg=weightnoise: each member its own draws
    has_aux = cfg.aux.name != "none"
    summaries: list[Summary | None] = [None for _ in members]
    for m, line in itertools.product(members, d.notes):  # how the preprocessing fit went
        m.log(line)
    bar = Bar(tc.progress)
    for epoch in range(len(records[0].rows) + 1, tc.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros(k, device=device)
        perms = torch.stack([rng.permutation(n, device) for rng in rngs])  # (K, n)
        bar.epoch(f"epoch {epoch}/{tc.epochs}", per_epoch)
        for i in range(per_epoch):
            idx = perms[:, i * bs : (i + 1) * bs]  # each member its own batch
            x, y = d.batch(idx)  # (K, B, C, H, W), (K, B)
            if aug:  # each member its own draws, exactly those of its solo run
                x = torch.stack([data.augment(a, aug, r.aug) for a, r in zip(x, rngs, strict=True)])
            clean = step.perturb(noise)  # reg=weightnoise, else None
            with amp:
                out = model(x.transpose(0, 1).flatten(1, 2).contiguous(memory_format=layout))
            extra = multitask.losses(cfg, model.aux_output(), x, y) if has_aux else None
            loss_sum += step(out, y, live, clean, extra)
            bar.advance()
        rows = evaluate_epoch(cfg, model, d, step, amp, epoch, elapsed(t0, device), per_epoch * bs)
        on, wall = live.nonzero().flatten().tolist(), time.perf_counter() - start
        goes = save_epochs(on, members, records, rows, loss_sum, model, step, rngs, wall)
        for j, go_on in zip(on, goes, strict=True):
            report_epoch(members[j], records[j])
            if not go_on:
                live[j] = False  # stopped: tested now; its slices no longer count
                summaries[j] = finish(members[j], records[j], model, j, d, amp, wall, sources[j])
        if not live.any():
            break
    bar.stop()
    for j in live.nonzero().flatten().tolist():
        wall = time.perf_counter() - start
        summaries[j] = finish(members[j], records[j], model, j, d, amp, wall, sources[j])
    return summaries


def evaluate_epoch(
    cfg: DictConfig,
    model: fuse.Fused,
    d: data.Splits,
    step: Step,
    amp,
    epoch: int,
    seconds: float,
    samples: int,
) -> list[dict[str, Any]]:
    """The live members' rows of an epoch: training and validation metrics beside the timing (the
    epoch's training took `seconds` for `samples` examples), and the auxiliary task's validation
    loss (and accuracy) beside the main task's."""
    timing = {"seconds": round(seconds, 4), "samples_per_s": round(samples / seconds, 1)}
    bs = cfg.trainer.eval_batch_size
    rows = [r | timing for r in epoch_rows(model, d, step, bs, amp, epoch)]
    if cfg.aux.name != "none":
        aux_rows = multitask.evaluate(cfg, model, d.x_val, d.y_val, bs, amp)
        rows = [r | a for r, a in zip(rows, aux_rows, strict=True)]
    return rows


def prepare(
    cfg: DictConfig, solos: list[nn.Module], device: torch.device
) -> tuple[fuse.Fused, torch.memory_format]:
    """The members fused on the device in their memory layout, transfer's frozen blocks frozen,
    compiled if asked."""
    model = fuse.Fused(solos).to(device)
    layout = torch.channels_last if cfg.trainer.channels_last else torch.contiguous_format
    model.to(memory_format=layout)  # 4-d weights only; checkpoints load into either order
    frozen = transfer.frozen(cfg, solos[0]) if cfg.transfer.name != "none" else set()
    for name, p in model.net.named_parameters():  # the fused model keeps the solo names
        p.requires_grad_(name not in frozen)
    if cfg.trainer.compile:  # in place: the state_dict keeps its names, checkpoints stay loadable
        model.compile()
    return model, layout


def start_from(m: Member, solo: nn.Module) -> dict[str, Any]:
    """transfer=finetune / frozen: the source's weights into the member's solo model (a resume
    then replaces them by its own last.pt); what its summary records about the source."""
    source = transfer.resolve(m.cfg)
    if source is None:
        return {}
    loaded = transfer.load(m.cfg, solo, source)
    m.log(
        f"transfer: {loaded} layers from {source.checkpoint}, first {m.cfg.transfer.freeze} blocks frozen"
    )
    return source.record(loaded)


def resume(
    m: Member, record: Record, solo: nn.Module, rng: streams.Streams
) -> dict[str, Any] | None:
    """Load the member's last.pt, if any, into its solo model, record and streams; return it."""
    path = m.run_dir / folder.LAST
    if not path.exists():
        if m.cfg.get("resume"):  # stopped before its first epoch was saved, or last.pt deleted
            m.log(f"resume=true: no {folder.LAST} in {m.run_dir}; the run starts at epoch 1")
        return None
    ck: dict[str, Any] = {}

    def restore(c: dict[str, Any]) -> None:
        if "config" in c and (diff := folder.differ(m.config_text, c["config"])):
            raise ConfigError(  # e.g. another seed's last.pt copied here
                f"holds another run (it differs in {', '.join(diff[:3])}); delete it to start "
                "the run afresh"
            )
        rng.restore(c["rng"])
        ck.update(c)

    record.resume(path, solo, restore)
    m.log(f"resumed from {path} after epoch {len(record.rows)}")
    m.on_resume(record.rows)
    return ck


def load_step(step: Step, saved: list[dict[str, Any] | None], members: list[Member]) -> None:
    """The members' optimizer and schedule states, fused; all or none resume (a job groups its
    members by the epochs they have done)."""
    if all(ck is None for ck in saved):
        return
    cks = [ck for ck in saved if ck is not None]
    if len(cks) < len(saved) or len({len(ck["rows"]) for ck in cks}) > 1:
        raise ConfigError("members of a fused job must have done the same epochs")
    try:
        opt = fuse.fuse_optimizers([ck["optimizer"] for ck in cks])
        step.load({"optimizer": opt, "schedule": cks[0]["schedule"]})
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"checkpoint {members[0].run_dir / folder.LAST} does not fit this run "
            f"({type(exc).__name__}); delete it to start the run afresh"
        ) from None


def save_epochs(
    on: list[int],
    members: list[Member],
    records: list[Record],
    rows: list[dict],
    loss_sum: torch.Tensor,
    model: fuse.Fused,
    step: Step,
    rngs: list[streams.Streams],
    wall: float,
) -> list[bool]:
    """Record and checkpoint the live members' epoch (members `on`); False for those that stop.
    The weights and optimizer states come from one state_dict for all members, and a fused job's
    members write their checkpoints at once: their waits on the disk overlap."""
    weights, opts, losses = model.members(on), step.members(on), loss_sum.tolist()
    saves = [
        (
            members[j].run_dir,
            records[j],
            rows[j],
            losses[j],
            w,
            {**opt, "rng": rngs[j].state(), "config": members[j].config_text},
            wall,
        )
        for j, w, opt in zip(on, weights, opts, strict=True)
    ]
    return list((WRITER.map if len(members) > 1 else map)(lambda a: save_epoch(*a), saves))


def save_epoch(
    run_dir: Path, record: Record, row: dict, loss: float, weights: dict, state: dict, wall: float
) -> bool:
    """Record and checkpoint one member's epoch; False when the member stops here."""
    go_on = record.add(row, diverged=not math.isfinite(loss))
    record.save(run_dir, weights, state, wall)
    return go_on


def report_epoch(m: Member, record: Record) -> None:
    """The member's epoch line, then its loggers: only once the epoch is in last.pt, so that a
    resume never logs it twice."""
    row = record.rows[-1]
    epoch = f"epoch {row['epoch']:3d}/{m.cfg.trainer.epochs}"
    m.log(
        f"{epoch}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  val loss "
        f"{row['val_loss']:.4f} acc {row['val_acc']:.4f}  {row['samples_per_s']:.0f} samples/s",
        # beside a run's name (sweeps, jobs of several seeds): a line that fits 100 columns
        f"{epoch}  loss {row['train_loss']:.4f}/{row['val_loss']:.4f}  "
        f"acc {row['train_acc']:.4f}/{row['val_acc']:.4f} (train/val)",
    )
    m.on_epoch(row)
    if record.status != "completed":  # diverged or stopped early
        m.log(stop_reason(record, int(row["epoch"])))


def stop_reason(record: Record, epoch: int) -> str:
    if record.status == "diverged":
        return f"loss is not finite at epoch {epoch}: the run diverged (try a smaller optim.lr)"
    assert record.es is not None  # stopped early: reg.earlystop is on
    return (
        f"early stop: no {record.monitor} improvement for {record.es.patience} epochs; "
        f"best epoch {record.best['epoch']}"
    )


def epoch_rows(
    model: fuse.Fused, d: data.Splits, step: Step, bs: int, amp, epoch: int
) -> list[dict[str, Any]]:
    """Each member's metrics.csv row: clean (eval-mode) metrics on a fixed training subset of up
    to 10,000 examples and on the validation split, the weights' norm, the learning rate."""
    n_fit = min(len(d.x_train), 10_000)
    train = fuse.evaluate(model, d.x_train[:n_fit], d.y_train[:n_fit], bs, amp)
    val = fuse.evaluate(model, d.x_val, d.y_val, bs, amp)
    return [
        {
            "epoch": epoch,
            "train_loss": t[0],
            "train_acc": t[1],
            "val_loss": v[0],
            "val_acc": v[1],
            "gen_gap": t[1] - v[1],
            "val_ece": v[2],
            "weight_norm": diagnostics.weight_norm([w.chunk(model.k)[j] for w in step.weights]),
            "lr": step.opt.param_groups[0]["lr"],
        }
        for j, (t, v) in enumerate(zip(train, val, strict=True))
    ]


def finish(
    m: Member,
    record: Record,
    model: fuse.Fused,
    j: int,
    d: data.Splits,
    amp,
    wall: float,
    source: dict[str, Any],
) -> Summary:
    """Test member j once, as its solo model (its best weights with early stopping, else its last
    ones), build its summary and hand it to m.done."""
    s = record.summary(m.run_dir, m.cfg.seed, wall)
    s.epochs_to_target = diagnostics.epochs_to(
        [r["val_acc"] for r in record.rows if math.isfinite(r["val_acc"])],
        m.cfg.trainer.target_val_acc,
    )
    solo = model.net
    if model.k > 1:
        with torch.random.fork_rng(devices=[]):  # the constructors' draws leave dropout masks be
            solo = models.build(m.cfg, d.shape, d.num_classes).to(d.x_train.device)
        s.fused_with = model.k
    s.params, s.device = sum(p.numel() for p in solo.parameters()), str(d.x_train.device)
    s.threads, s.n_test = torch.get_num_threads(), len(d.y_test)  # n_test: compare's noise floor
    s = dataclasses.replace(s, **source)  # transfer: the source run, its hash, the layers loaded
    if s.status != "diverged":
        last = model.member(j)
        if m.cfg.trainer.test_checkpoints:
            # a solo job's member(j) is its live state, which loading best.pt would overwrite
            last = {k: v.clone() for k, v in last.items()}
            s.test_acc_last, s.test_acc_best = checkpoints_apart(m, solo, last, d, amp)
        solo.load_state_dict(last)
        if record.es:  # tested: the best weights with early stopping, else the last ones
            solo.load_state_dict(checkpoint.load(m.run_dir / folder.BEST)["model"])
        test(m, solo, d, amp, s)
        s.tested = "best" if record.es else "last"
        s.weight_norm = diagnostics.weight_norm(models.decayed(solo))
        s.near_zero_weights = diagnostics.near_zero_share(models.decayed(solo))
    m.done(s)
    return s


def checkpoints_apart(
    m: Member, solo: nn.Module, last: dict[str, Any], d: data.Splits, amp
) -> tuple[float, float | None]:
    """trainer.test_checkpoints: test accuracy of the last weights and of the best-validation ones
    (None without a best.pt), each on the test split: does the best epoch beat the last?"""

    def accuracy(state: dict[str, Any]) -> float:
        solo.load_state_dict(state)
        out = diagnostics.predict(solo, d.x_test, m.cfg.trainer.eval_batch_size, amp)
        return diagnostics.scores(out, d.y_test)[1]

    best = m.run_dir / folder.BEST
    return accuracy(last), accuracy(checkpoint.load(best)["model"]) if best.is_file() else None


def test(m: Member, solo: nn.Module, d: data.Splits, amp, s: Summary) -> None:
    """The one look at the test split: loss, accuracy, ECE; with trainer.mc_dropout=T also those of
    the mean of T passes with dropout on. The outputs go to the run folder for ensembles."""
    tc = m.cfg.trainer
    logits = diagnostics.predict(solo, d.x_test, tc.eval_batch_size, amp)
    s.test_loss, s.test_acc, s.test_ece = diagnostics.scores(logits, d.y_test)
    outputs = {"log_probs": logits.log_softmax(1).float().cpu().numpy()}
    if tc.mc_dropout and not diagnostics.has_dropout(solo):
        m.log(f"trainer.mc_dropout={tc.mc_dropout}: the model has no dropout to sample; no MC test")
    elif tc.mc_dropout:  # the masks: a sub-stream of the run's dropout seed
        seed = source_seed(stream_value(m.cfg, "dropout"), "dropout", 1)
        lp = diagnostics.mc_dropout(solo, d.x_test, tc.eval_batch_size, amp, tc.mc_dropout, seed)
        s.mc_test_loss, s.mc_test_acc, s.mc_test_ece = diagnostics.scores(lp, d.y_test)
        outputs["mc_log_probs"] = lp.float().cpu().numpy()
    folder.write_test_outputs(m.run_dir, d.y_test.cpu().numpy(), outputs)
