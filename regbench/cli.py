"""The command line: Typer in front, Hydra behind; overrides pass through in Hydra's own syntax."""

from __future__ import annotations

import os
import shlex
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from regbench import __version__, compare, disk
from regbench.claims.command import app as claims_app
from regbench.compose import compose_config, explain
from regbench.config import (
    GROUPS,
    LINE,
    USER_CONF_DEFAULT,
    USER_CONF_ENV,
    ConfigError,
    group_options,
    user_conf_dir,
)
from regbench.schema import KEY_CHOICES
from regbench.staged_options import (
    Alpha,
    Budget,
    Delta,
    Futility,
    Power,
    Spending,
    Stage,
    StagedBaseline,
    UntilDecided,
)

try:  # Typer vendors click from 0.2x on; before, it used click itself
    from typer._click import exceptions as click_errors
except ImportError:
    from click import exceptions as click_errors  # type: ignore[no-redef]

if TYPE_CHECKING:  # imported when used: sweep and rich's console cost start-up time
    from rich.console import Console

    from regbench.sweep import Plan


def _help() -> str:
    user = user_conf_dir()

    def fit(head: str, text: str) -> str:  # help lines within LINE columns, continued aligned
        return textwrap.fill(text, LINE, initial_indent=head, subsequent_indent=" " * len(head))

    lines = [fit(f"  {g:<8} ", ", ".join(group_options(g))) for g in (*GROUPS, "study")]
    where = (
        f"conf/ and {user}"
        if user
        else f"conf/; your own: --config-dir DIR or ./{USER_CONF_DEFAULT}"
    )
    return (
        "Controlled experiments on how regularization changes what deep networks learn.\n\n"
        # \b: click keeps the paragraph as written (one line per group) instead of rewrapping it
        f"Config groups (from {where}) and their options:\n\n\b\n"
        + "\n".join(lines)
        + "\n\nOther knobs (key=value; defaults in conf/):\n\n\b\n"
        + "\n".join(fit(f"  {k:<17} ", v) for k, v in KEY_CHOICES.items())
    )


app = typer.Typer(
    help=_help(),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _version(show: bool) -> None:
    if show:
        typer.echo(f"regbench {__version__}")
        raise typer.Exit()


@app.callback()
def _group(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    config_dir: Annotated[
        str | None,
        typer.Option(
            "--config-dir",
            metavar="DIR",
            help=f"Your config folder (default ./{USER_CONF_DEFAULT} where it exists): its groups "
            "(study/, model/, data/, ...) add to conf/'s and its Python modules can be _target_s.",
        ),
    ] = None,
) -> None:
    """Keeps `regbench COMMAND` a group of commands."""
    if config_dir is not None:
        _use_config_dir(config_dir)


def _fail(msg: str) -> NoReturn:
    for line in msg.splitlines():  # a sweep's invalid combinations: one line each
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(2)


@app.command(context_settings=PASS_THROUGH)
def train(
    ctx: typer.Context,
    cfg: bool = typer.Option(False, "--cfg", help="Print the composed config and exit."),
) -> None:
    """One run: regbench train model=cnn reg=[dropout,l2] optim=sgd trainer.epochs=20 seed=3

    Overrides are Hydra's: group=option, reg=[a,b,...] for several regularizers, key.sub=value.
    The run folder (config.yaml, metrics.csv, summary.json, best.pt, last.pt) goes to out_dir.

    Several seeds: seed=[0,1,2,3] trainer.fuse=4 trains the four runs as one fused model (each
    still its own run folder, as its solo run would write it); trainer.fuse=1 (the default) runs
    them one after another in this process. Fusion pays for mlp on a CPU and on a GPU; conv
    models (cnn, vgg, resnet) on a CPU run slower fused (benchmarks/README.md).
    """
    overrides = list(ctx.args)
    if cfg and overrides[:1] in (["job"], ["all"], ["hydra"]):  # Hydra's --cfg job|hydra|all
        overrides = overrides[1:]  # regbench prints the job's config (Hydra's own is internal)
    if any(o in ("-m", "--multirun") for o in overrides):
        _fail(
            "regbench train runs one config; for a grid of runs use regbench sweep with the same overrides"
        )
    try:
        composed = compose_config(overrides)
    except ConfigError as exc:
        _fail(str(exc))
    if cfg:
        typer.echo(OmegaConf.to_yaml(composed), nl=False)
        return
    from regbench.run.job import Terminated, run_checked  # torch loads here, not for --help

    try:
        run_checked(composed, overrides)
    except Terminated:  # SIGTERM: the run has printed how to continue it
        raise typer.Exit(143) from None
    except KeyboardInterrupt:  # likewise
        raise typer.Exit(130) from None


def _dry_run(plan: Plan, console: Console) -> None:
    """`regbench sweep --dry-run`: every run with its status and warnings, and what is left."""
    from regbench import index as ix
    from regbench.folder import FINAL

    if not plan.runs:
        typer.echo(
            f"hydra/sweeper={plan.sweeper} picks the runs as it goes; sweep folder {plan.dir}"
        )
        return
    ix.print_runs({"runs": plan.runs}, console, f"{plan.name}: {len(plan.runs)} runs")
    by_line: dict[str, list[str]] = {}  # a warning of many runs (l2 with adam) once
    for name, lines in plan.warnings.items():
        for line in lines:
            by_line.setdefault(line, []).append(name)
    for line, names in by_line.items():
        more = f" and {len(names) - 1} more run{'s' * (len(names) > 2)}" if len(names) > 1 else ""
        typer.echo(f"warning: {names[0]}{more}: {line}")
    done = sum(r["status"] in FINAL for r in plan.runs)
    typer.echo(
        f"{len(plan.runs)} runs, {done} already done, {len(plan.runs) - done} to run "
        f"(sweep folder {plan.dir})"
    )


@app.command(context_settings=PASS_THROUGH, no_args_is_help=True)
def sweep(
    ctx: typer.Context,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List the runs it would launch and how many are done; run none."
    ),
    until_decided: UntilDecided = False,
    baseline: StagedBaseline = None,
    delta: Delta = None,
    alpha: Alpha = None,
    power: Power = None,
    stage: Stage = None,
    budget: Budget = None,
    spending: Spending = None,
    futility: Futility = None,
) -> None:
    """Many runs through Hydra's multirun: regbench sweep model=mlp,cnn reg=none,dropout seed=0,1,2

    Comma lists sweep (the cartesian grid); study=NAME loads conf/study/NAME.yaml (your overrides
    win). Launchers: hydra/launcher=joblib (local processes), submitit_local, submitit_slurm, ray;
    search: hydra/sweeper=optuna. Runs go to out_dir/sweeps/<sweep_name>/<run>/, the index to
    sweep.json there. A rerun skips finished runs, resumes interrupted ones, reruns failed ones.
    trainer.fuse=K trains runs that differ only in seed K at a time as one fused model (same run
    folders); it pays for mlp on a CPU and on a GPU, not for conv models on a CPU.
    """
    from rich.console import Console

    from regbench import sweep as sw
    from regbench.pretrain import source_args

    console = Console(highlight=False)
    given = {
        "baseline": baseline,
        "delta": delta,
        "alpha": alpha,
        "power": power,
        "stage": stage,
        "budget": budget,
        "spending": spending,
        "futility": futility,
    }
    if not until_decided and (unused := [f"--{k}" for k, v in given.items() if v is not None]):
        works, them = ("works", "it") if len(unused) == 1 else ("work", "them")
        _fail(f"{', '.join(unused)} only {works} with --until-decided; add it, or drop {them}")
    if until_decided:
        _until_decided(list(ctx.args), given, dry_run)
        return
    try:
        plan = sw.plan(list(ctx.args))
        pre = source_args(list(ctx.args), plan.name)
        source = sw.plan(pre) if pre is not None else None
    except ConfigError as exc:
        _fail(str(exc))
    # a study's pretrain: block, one source run per seed, first; Ctrl-C there stops the command,
    # a failed source's transfer runs are skipped with a line each and the others go on
    if (first := _launch(source, ctx.args, dry_run, console) if source else 0) in (sw.REFUSED, 130):
        raise typer.Exit(first)
    raise typer.Exit(_launch(plan, ctx.args, dry_run, console) or first)


def _until_decided(args: list[str], given: dict[str, Any], dry_run: bool) -> None:
    """`regbench sweep --until-decided` (regbench/stages.py): its dry run, or the staged sweep."""
    from regbench import stages

    try:
        if dry_run:  # the first stage's runs and the budget's maximum: nothing trains
            stages.dry_run(args, given)
            return
        command = shlex.join(["regbench", *sys.argv[1:]])  # as typed: its options included
        raise typer.Exit(stages.sweep_until_decided(args, given, command))
    except ConfigError as exc:
        _fail(str(exc))
    except OSError as exc:  # a read-only or full out_dir
        if not disk.refused(exc):
            raise
        _fail(disk.write_error(exc))


def _launch(plan: Plan, args: list[str], dry_run: bool, console: Console) -> int:
    """List (--dry-run) or run one sweep and report it; its exit code."""
    from regbench import index as ix
    from regbench import sweep as sw

    if dry_run:
        _dry_run(plan, console)
        return 0
    try:
        ix.write_index(plan, " ".join(["regbench", "sweep", *args]))
    except OSError as exc:  # a read-only or full out_dir or sweep folder: before any job starts
        _fail(disk.write_error(exc))
    if (code := sw.launch(plan)) == sw.REFUSED:  # said in one line: no index to write or report
        return code
    try:
        return _report_sweep(plan, code, console, list(args))
    except OSError as exc:  # the disk filled up as the sweep ended
        if not disk.refused(exc):
            raise
        _fail(disk.write_error(exc, plan.dir))


def _report_sweep(plan: Plan, code: int, console: Console, args: list[str]) -> int:
    """The sweep's runs, its groups, the best run, what failed and where its logs are; the
    command's exit code."""
    from regbench import index as ix
    from regbench.folder import BAD

    index = ix.refresh_index(plan.dir)
    ix.print_runs(index, console, f"sweep {plan.name} ({plan.dir / ix.INDEX})")
    ix.print_groups(index, plan.swept, console)
    finished = [r for r in index["runs"] if r["status"] not in BAD and r.get("best_val_acc")]
    if best := max(finished, key=lambda r: r["best_val_acc"], default=None):
        typer.echo(f"best run: {best['name']} (val acc {best['best_val_acc']:.4f}) {best['dir']}")
    elsewhere = [r["name"] for r in index["runs"] if r["status"] == "running"]
    if elsewhere:  # locked by another sweep over the same folder: never run twice at once
        typer.echo(f"still running in another process: {', '.join(elsewhere)}")
    bad = ix.failures(index)
    for line in bad:
        typer.echo(f"error: {line}", err=True)
    skipped = ix.skipped(index)  # transfer runs whose source failed: not failures of their own
    for line in skipped:
        typer.echo(f"skipped: {line}", err=True)
    if code in (130, 143):  # Ctrl-C, SIGTERM: its runs are interrupted, resumed by a rerun
        typer.echo(
            f"interrupted: continue with {shlex.join(['regbench', 'sweep', *args])}", err=True
        )
    return code or (1 if bad or skipped else 0)


app.command("compare")(compare.compare_command)
app.add_typer(claims_app, name="claims")


def _take_config_dir(argv: list[str]) -> list[str]:
    """Read --config-dir wherever it stands: it must be known before the help lists the groups."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--config-dir" and i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
        elif a.startswith("--config-dir="):
            value, i = a.split("=", 1)[1], i + 1
        else:
            out.append(a)
            i += 1
            continue
        _use_config_dir(value)
    return out


def _use_config_dir(value: str) -> None:
    folder = Path(value).expanduser().resolve()
    if not folder.is_dir():
        typer.echo(f"error: --config-dir {value}: no such folder; give an existing one", err=True)
        raise SystemExit(2)
    os.environ[USER_CONF_ENV] = str(folder)  # inherited by every job a sweep starts


@app.command(context_settings=PASS_THROUGH)
def inspect(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="The PNG to write.")] = Path(
        "activation_std.png"
    ),
) -> None:
    """Each layer's activation std at initialisation, one batch: regbench inspect
    init=normal_0.01,normal_1,he_normal 'model.hidden=[128,128,128,128,128]' --out std.png

    Overrides as for train; comma lists draw one curve each (Hydra's sweep syntax).
    """
    from regbench import inspection  # torch loads here, not for --help

    args = list(ctx.args)
    try:
        disk.check_figure(out)  # before composing or any forward pass
        runs = [(label, compose_config(o)) for label, o in inspection.expand(args)]
    except ConfigError as exc:
        _fail(str(exc))
    except (HydraException, OmegaConfBaseException) as exc:  # the override parser's errors
        _fail(explain(exc, args))
    try:
        curves = {label: inspection.activation_stds(cfg) for label, cfg in runs}
        inspection.plot(curves, inspection.title([cfg for _, cfg in runs]), out)
    except ConfigError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {out} ({exc.strerror}); choose another --out")
    typer.echo(inspection.report(curves))
    typer.echo(f"wrote {out}")


def main() -> None:
    args = _take_config_dir(sys.argv[1:])
    user = user_conf_dir()
    if user is not None:  # ./regbench_conf, made absolute before any job could change folder
        os.environ[USER_CONF_ENV] = str(user)
    app.info.help = _help()
    try:  # standalone_mode=False: Typer's usage errors come here, not as its 3-line block
        code = app(args, prog_name="regbench", standalone_mode=False)
    except click_errors.UsageError as exc:
        if isinstance(exc, getattr(click_errors, "NoArgsIsHelpError", ())):
            exc.show()  # `regbench sweep` alone: its help, as before
            sys.exit(exc.exit_code)
        where = exc.ctx.command_path if exc.ctx else "regbench"
        typer.echo(f"error: {exc.format_message().rstrip('.')}; see {where} --help", err=True)
        sys.exit(2)
    except click_errors.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
