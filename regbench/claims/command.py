"""`regbench claims` (the list) and `regbench claims run [NAME...]` (the staged experiments and
the ledger)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated

import typer
import yaml

from regbench import disk
from regbench.claims import catalogue
from regbench.config import LINE, ConfigError

app = typer.Typer(
    help="The decks' claims, each decided by a staged experiment: `regbench claims` lists them, "
    "`regbench claims run [NAME...]` runs them and writes the ledger.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


@app.callback()
def listing(ctx: typer.Context) -> None:
    """List the claims: name, deck, the claim in one line."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        claims = catalogue.load()
    except ConfigError as exc:
        _fail(str(exc))
    width = max(len(n) for n in claims)
    for name, c in claims.items():
        head = f"{name:<{width}}  {c.deck.split('-')[0]:<9} "
        typer.echo(
            textwrap.fill(c.claim, LINE, initial_indent=head, subsequent_indent=" " * len(head))
        )
    typer.echo(f"{len(claims)} claims; regbench claims run [NAME...] decides them")


def _notes(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        notes = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"--notes {path}: cannot read it as YAML ({type(exc).__name__})"
        ) from None
    if not isinstance(notes, dict) or not all(isinstance(v, str) for v in notes.values()):
        raise ConfigError(f"--notes {path}: a mapping of claim name: sentence")
    return {str(k): v for k, v in notes.items()}


def _checked(names: list[str] | None, scale: str, extra: list[str]) -> dict:
    """The claims asked for, every arm's config composed and checked before any training."""
    from regbench.claims import runner

    if scale not in catalogue.SCALES:
        raise ConfigError(f"--scale {scale}: choose from {', '.join(catalogue.SCALES)}")
    claims = catalogue.load(names or None)
    for name, claim in claims.items():
        try:
            runner.check(claim, scale, extra)
        except ConfigError as exc:
            raise ConfigError(f"claim {name}: {exc}") from None
    return claims


@app.command()
def run(
    names: Annotated[list[str] | None, typer.Argument(help="Claims to run (default: all).")] = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where the claims' sweeps go.")] = Path(
        "outputs"
    ),
    scale: Annotated[
        str, typer.Option("--scale", help="default (digits, a CPU) or full (a GPU).")
    ] = "default",
    ledger: Annotated[
        Path | None,
        typer.Option(
            "--ledger",
            help="The ledger's markdown file; .json and .html beside it (default: OUT_DIR/ledger.md).",
        ),
    ] = None,
    notes: Annotated[
        Path | None,
        typer.Option(
            "--notes",
            help="YAML of claim: sentence, printed with its row (why it does not hold at this scale).",
        ),
    ] = None,
    data_root: Annotated[
        str | None,
        typer.Option("--data-root", help="data.root for the datasets the full scale reads."),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", help="Claims run at once, each in its own process (the cores shared).", min=1
        ),
    ] = 1,
) -> None:
    """Run the claims staged until decided (resumable: rerun the same command, nothing finished is
    redone) and write the ledger."""

    extra = [f"data.root={data_root}"] if data_root else []
    try:
        claims, remarks = _checked(names, scale, extra), _notes(notes)
        disk.check_folder(out_dir, "--out-dir")  # before any run: a read-only or full disk
        if ledger is not None:
            disk.check_folder(ledger.parent, "--ledger")
    except ConfigError as exc:
        _fail(str(exc))
    command = " ".join(["regbench claims run", *(names or [])]) + (
        f" --scale {scale}" if scale != "default" else ""
    )
    if jobs > 1 and len(claims) > 1:
        code = _in_processes(claims, jobs, out_dir, scale, data_root)
        _write(
            ledger or out_dir / "ledger.md", claims, _read(claims, out_dir, scale), remarks, command
        )
        raise typer.Exit(code)
    results, code = _one_by_one(claims, out_dir, scale, extra)
    _write(ledger or out_dir / "ledger.md", claims, results, remarks, command)
    raise typer.Exit(code)


def _one_by_one(claims: dict, out_dir: Path, scale: str, extra: list[str]) -> tuple[dict, int]:
    """Each claim in this process, one after another: the results and the exit code."""
    from regbench.claims import runner

    results, code = {}, 0
    for name, claim in claims.items():
        typer.echo(f"== {name}: {claim.claim}")
        try:
            results[name] = res = runner.run(name, claim, out_dir, scale, extra)
        except ConfigError as exc:
            _fail(f"claim {name}: {exc}")
        except KeyboardInterrupt:
            typer.echo(
                "interrupted: rerun the same command to go on (nothing finished is redone)",
                err=True,
            )
            raise typer.Exit(130) from None
        typer.echo(f"== {name}: {res.verdict} ({res.runs} runs, {res.wall_seconds:.0f} s)")
        code = code or (1 if res.error else 0)
    return results, code


def _in_processes(claims: dict, jobs: int, out_dir: Path, scale: str, root: str | None) -> int:
    """--jobs N: each claim in a child process; the worst exit code (2: a claim's bad input)."""
    from regbench.claims import jobs as jobs_mod

    try:
        codes = jobs_mod.run(
            list(claims), jobs, out_dir, scale, ["--data-root", root] if root else []
        )
    except KeyboardInterrupt:
        typer.echo(
            "interrupted: rerun the same command to go on (nothing finished is redone)", err=True
        )
        raise typer.Exit(130) from None
    for name, c in codes.items():
        if c:
            typer.echo(
                f"{name}: exit code {c}; its output is in {out_dir / jobs_mod.LOGS / name}.log",
                err=True,
            )
    return max(codes.values(), default=0)


def _read(claims: dict, out_dir: Path, scale: str) -> dict:
    """The results `claims run` left in out_dir's sweep folders (a claim never run: named, left out)."""
    from regbench.claims import runner

    results = {}
    for name, claim in claims.items():
        res = runner.read(out_dir / "sweeps" / runner.sweep_name(name, scale), claim)
        if res is None:
            typer.echo(f"{name}: not run yet (regbench claims run {name})", err=True)
        else:
            results[name] = res
    return results


def _write(path: Path, claims: dict, results: dict, remarks: dict[str, str], command: str) -> None:
    from regbench.claims import ledger as ledger_mod

    for p in ledger_mod.write(path.with_suffix(""), claims, results, remarks, command):
        typer.echo(f"wrote {p}")


@app.command()
def ledger(
    names: Annotated[
        list[str] | None, typer.Argument(help="Claims to list (default: all).")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Where `claims run` put the claims' sweeps.")
    ] = Path("outputs"),
    scale: Annotated[str, typer.Option("--scale", help="default or full.")] = "default",
    ledger: Annotated[
        Path | None,
        typer.Option("--ledger", help="The ledger's markdown file (default: OUT_DIR/ledger.md)."),
    ] = None,
    notes: Annotated[
        Path | None, typer.Option("--notes", help="YAML of claim: sentence, printed with its row.")
    ] = None,
) -> None:
    """Write the ledger from the claims' results as `claims run` left them, running nothing (a
    claim never run is left out and named)."""

    try:
        if scale not in catalogue.SCALES:
            raise ConfigError(f"--scale {scale}: choose from {', '.join(catalogue.SCALES)}")
        claims = catalogue.load(names or None)
        remarks = _notes(notes)
    except ConfigError as exc:
        _fail(str(exc))
    results = _read(claims, out_dir, scale)
    if not results:
        _fail(f"no claim has run under {out_dir}; regbench claims run --out-dir {out_dir}")
    command = " ".join(["regbench claims run", *(names or [])]) + (
        f" --scale {scale}" if scale != "default" else ""
    )
    _write(ledger or out_dir / "ledger.md", claims, results, remarks, command)
