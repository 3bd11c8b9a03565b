"""A study's `pretrain:` block (transfer learning in one command): the source sweep that
`regbench sweep` runs before the study's own runs, `<sweep name>-source`."""

from __future__ import annotations

from regbench import folder, index, sweep
from regbench.config import ConfigError
from regbench.sweep import merged, parse_overrides, study_spec


def source_args(args: list[str], name: str) -> list[str] | None:
    """A study's `pretrain:` block: the arguments of its source sweep, `<name>-source`, which
    `regbench sweep` runs first (transfer=finetune / frozen read their seed's run there). The
    study's and the user's overrides, the block's keys replacing theirs, the transfer arms left
    out; None for a study without the block."""
    study = next((a.split("=", 1)[1] for a in args if a.startswith("study=")), None)
    pre = study_spec(study).get("pretrain") if study else None
    if pre is None:
        return None
    if not isinstance(pre, dict):
        raise ConfigError(
            f"study {study}: 'pretrain' must be a mapping of overrides (data.classes: ...)"
        )
    block = [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in pre.items()]
    own = {p.get_key_element() for p in parse_overrides(block)}
    _, _, overrides = merged(args)
    kept = [
        o
        for o, p in zip(overrides, parse_overrides(overrides), strict=True)
        if p.get_key_element() not in own
        and p.get_key_element().split(".")[0] != "transfer"
        and p.get_key_element() != "sweep_name"
    ]
    return [*kept, *block, f"sweep_name={name}-source"]


def sources_plan(args: list[str], seeds: range) -> sweep.Plan:
    """The source sweep (source_args' arguments, any seed= among them replaced) of these seeds."""
    kept = [a for a in args if a.split("=", 1)[0] != "seed"]
    return sweep.plan([*kept, f"seed={','.join(map(str, seeds))}"])


def run_sources(args: list[str], seeds: range, command: str) -> int:
    """The source runs of these seeds (a staged study's stage: its new seeds; a claim: its
    budget); those finished before are skipped. Seed s of a transfer arm then starts from seed
    s's source. The sweep's exit code."""
    p = sources_plan(args, seeds)
    if p.runs and all(r["status"] in folder.FINAL for r in p.runs):
        return 0
    index.write_index(p, command)
    code = sweep.launch(p)
    if code != sweep.REFUSED:
        index.refresh_index(p.dir)
    return code
