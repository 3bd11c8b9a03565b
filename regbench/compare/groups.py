"""Runs in, groups out: config keys and labels, filters, grouping of seeds, and which groups
are compared with which (the baseline of each group, the cells of a factorial design)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from regbench import folder
from regbench.compare.load import CompareError, Run
from regbench.folder import flatten
from regbench.precision import arithmetic

# Keys that never distinguish experiments: grouping on them would split seeds of one setting.
# folder.BOOKKEEPING (display, device, paths, loggers) plus the seed; `hydra` is defensive.
BOOKKEEPING = ("seed", *folder.BOOKKEEPING, "hydra")
# a display value says what it is only for these keys; others read key=value in joined names
SELF_EXPLAINING = ("model", "reg", "optim", "data")
# seed streams where null means "follows `seed`"
SEED_KEYS = ("data.split_seed", "seeds.init", "seeds.order", "seeds.aug", "seeds.dropout")
SINGLE_GROUP_LABELS = ("data", "model", "reg", "optim")


@dataclass
class Group:
    labels: dict[str, str]  # display column -> label
    settings: dict[str, Any]  # what defines the group; baseline matching compares these
    runs: list[Run] = field(default_factory=list)

    @property
    def name(self) -> str:
        """One line for figures and plain-words summaries, e.g. `cnn / dropout / seeds=init`."""
        return " / ".join(v if k in SELF_EXPLAINING else f"{k}={v}" for k, v in self.labels.items())

    def values(self, key: str) -> np.ndarray:
        """(n,) the key's checked value in each usable run that has one."""
        return np.array([v for r in self.runs if r.usable and (v := r.value(key)) is not None])

    def by_seed(self, key: str) -> dict[int, float] | None:
        """seed -> value over usable runs; None when a seed repeats or is not an integer."""
        pairs = [(r.seed, v) for r in self.runs if r.usable and (v := r.value(key)) is not None]
        seeds = [s for s, _ in pairs]
        if None in seeds or len(set(seeds)) < len(seeds):
            return None
        return dict(pairs)  # type: ignore[arg-type]

    def unpaired(self, base: Group, key: str) -> str | None:
        """Why this group is not paired by seed with base although it might have been; None when
        it is paired, or when the two share no seed (independent runs by design)."""
        for g in (self, base):
            runs = [r for r in g.runs if r.usable and r.value(key) is not None]
            if no_seed := [r.path.name for r in runs if r.seed is None]:
                return f"{no_seed[0]}'s config.yaml has no integer seed"
            seeds = [r.seed for r in runs]
            if len(set(seeds)) < len(seeds):
                return f"seeds repeat within {g.name}"
        a, b = self.by_seed(key) or {}, base.by_seed(key) or {}
        if a.keys() != b.keys():
            return f"seeds {sorted(a)} against {sorted(b)}" if a.keys() & b.keys() else None
        return "fewer than 2 seeds" if len(a) < 2 else None


def count_once(groups: Sequence[Group]) -> str | None:
    """Runs of a seed a group already holds (a run repeated in another folder, name-1) are left
    out, the first by folder name kept; the warning line naming them, or None."""
    repeats = []
    for g in groups:
        first: dict[int, Run] = {}
        for r in sorted(g.runs, key=lambda r: r.path.name):
            if not r.usable or r.seed is None:
                continue
            if r.seed not in first:
                first[r.seed] = r
                continue
            r.problem = f"seed {r.seed} again ({first[r.seed].path.name}); counted once"
            repeats.append(
                f"seed {r.seed} of {g.name} in {first[r.seed].path.name} and {r.path.name}"
            )
    if not repeats:
        return None
    return f"a seed run twice counts once (the first folder): {'; '.join(repeats)}"


# ---------------------------------------------------------------- config keys and labels


def get_key(config: dict[str, Any] | None, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def label(key: str, value: Any) -> str:
    """Display label: a group's `name`, the regularizer set for `reg`, else the value."""
    if key == "reg" and isinstance(value, dict):
        return "+".join(value) or "none"
    if isinstance(value, dict):
        if "name" in value:
            return str(value["name"])
        return ",".join(f"{k}={v}" for k, v in value.items())
    if value is None:
        return "seed" if key in SEED_KEYS else "-"  # a null seed stream follows `seed`
    return str(value)


def matches(key: str, value: Any, text: str) -> bool:
    """Compare a config value (or its label) with command-line text.

    Numbers compare as numbers (`1e-3` equals 0.001), booleans as true/false, `null` is None.
    """
    if value is None:
        return text in ("null", "None") or (key in SEED_KEYS and text == "seed")
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, list):  # model.hidden=[1024,1024] equals [1024, 1024]: values, not text
        items = _list_items(text)
        return (
            items is not None
            and len(items) == len(value)
            and all(matches(key, v, t) for v, t in zip(value, items, strict=True))
        )
    shown = label(key, value)
    if shown == text:
        return True
    try:
        return float(shown) == float(text)
    except ValueError:
        return False


def _list_items(text: str) -> list[str] | None:
    """`[1024, 1024]` or `[1024,1024]` -> its items as text; None for text that is no list."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    inner = text[1:-1].strip()
    return [t.strip().strip("'\"") for t in inner.split(",")] if inner else []


def is_bookkeeping(key: str) -> bool:
    return any(key == b or key.startswith(b + ".") for b in BOOKKEEPING)


def under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


def parse_assignment(text: str, option: str) -> tuple[str, str, bool]:
    """`key=value` or `key!=value` -> (key, value, negated)."""
    negated = "!=" in text
    key, sep, value = text.partition("!=" if negated else "=")
    if not sep or not key.strip():
        raise CompareError(f"{option} expects key=value (e.g. data.name=mnist), got {text!r}")
    return key.strip(), value.strip(), negated


# ---------------------------------------------------------------- filtering and grouping


def filter_runs(runs: Iterable[Run], filters: Sequence[str]) -> list[Run]:
    """Keep runs whose config satisfies every `key=value` / `key!=value` filter."""
    conditions = [parse_assignment(f, "--filter") for f in filters]
    return [
        r
        for r in runs
        if r.config is not None
        and all(matches(k, get_key(r.config, k), v) != neg for k, v, neg in conditions)
    ]


def group_runs(runs: Iterable[Run], by: Sequence[str] | None = None) -> list[Group]:
    """Group runs that differ only in seed (default) or share the labels of the `by` keys.

    Runs without a readable config cannot be grouped and are dropped here (they are warned
    about and listed in runs.csv).
    """
    groups: dict[str, Group] = {}
    for run in runs:
        if run.config is None:
            continue
        if by:
            settings = {k: label(k, get_key(run.config, k)) for k in by}
        else:
            settings = {k: v for k, v in flatten(run.config).items() if not is_bookkeeping(k)}
        ident = json.dumps(settings, sort_keys=True, default=str)
        groups.setdefault(ident, Group({}, settings)).runs.append(run)
    result = list(groups.values())
    tops, leaves = _varying_keys(result)
    for g in result:
        g.labels = dict(g.settings) if by else _default_labels(g, tops, leaves)
    return result


def _varying_keys(groups: Sequence[Group]) -> tuple[list[str], list[str]]:
    """Top-level keys whose subtree differs between groups, and leaves whose value differs.

    A leaf only some groups have (e.g. dropout.p) makes its top-level key vary but is listed
    as a varying leaf only if its value differs between them: otherwise a name tells them apart.
    Leaves a `seeds` option sets (its pinned streams, the split seed) are implied by its name.
    """
    values: dict[str, set[str]] = {}
    present: Counter[str] = Counter()
    for g in groups:
        for k, v in g.settings.items():
            values.setdefault(k, set()).add(json.dumps(v, sort_keys=True, default=str))
            present[k] += 1
    leaves = [k for k in values if len(values[k]) > 1]
    if "seeds.name" in leaves:
        leaves = [k for k in leaves if k not in SEED_KEYS or not _implied(groups, k, "seeds.name")]
    tops = {k.split(".")[0] for k in leaves} | {
        k.split(".")[0] for k in values if present[k] < len(groups)
    }
    return [t for t in dict.fromkeys(k.split(".")[0] for k in values) if t in tops], leaves


def _implied(groups: Sequence[Group], leaf: str, by: str) -> bool:
    """Whether every value of `by` goes with one value of `leaf` across the groups."""
    seen: dict[str, str] = {}
    for g in groups:
        key = json.dumps(g.settings.get(by), default=str)
        value = json.dumps(g.settings.get(leaf), default=str)
        if seen.setdefault(key, value) != value:
            return False
    return True


def _default_labels(group: Group, tops: Sequence[str], leaves: Sequence[str]) -> dict[str, str]:
    """One column per varying top-level key: its label plus its varying leaves.

    E.g. optim -> "adam lr=0.001" when the learning rate is swept, reg -> "dropout(p=0.5)+l2",
    seeds -> "init", data -> "digits split_seed=seed".
    """
    config = group.runs[0].config

    def params(prefix: str) -> list[str]:
        return [
            f"{k[len(prefix) :]}={label(k, group.settings[k])}"
            for k in leaves
            if k.startswith(prefix)
            and k in group.settings
            and k != prefix + "name"
            and group.settings[k] != {}
        ]

    labels: dict[str, str] = {}
    for top in tops:
        value = get_key(config, top)
        if top == "reg" and isinstance(value, dict):
            labels[top] = (
                "+".join(f"{r}({','.join(p)})" if (p := params(f"reg.{r}.")) else r for r in value)
                or "none"
            )
        elif isinstance(value, dict) and "name" not in value:
            labels[top] = " ".join(params(top + ".")) or label(top, value)
        else:
            labels[top] = " ".join([label(top, value), *params(top + ".")])
    # A single setting: still say what it is.
    return labels or {k: label(k, get_key(config, k)) for k in SINGLE_GROUP_LABELS}


# ---------------------------------------------------------------- baseline and factorial design


def mixed_arithmetic(groups: Sequence[Group]) -> str | None:
    """A warning when runs of one trainer.precision computed in different ways (device type and
    number format): the device is bookkeeping, so a run on a GPU (bf16 under "auto") and one on a
    CPU (fp32) share a group or face each other, and a difference may be the hardware's. A sweep
    over trainer.precision itself on one device is no such mix."""
    kinds: dict[str, Counter[str]] = {}
    for run in (r for g in groups for r in g.runs if r.usable):
        device = str((run.summary.device if run.summary else None) or "").split(":")[0]
        if device:
            precision = str(get_key(run.config, "trainer.precision") or "auto")
            kinds.setdefault(precision, Counter())[
                f"{device} in {arithmetic(precision, device)}"
            ] += 1
    if all(len(c) < 2 for c in kinds.values()):
        return None
    total = sum(kinds.values(), Counter())
    mix = ", ".join(f"{total[k]} on {k}" for k in sorted(total, key=lambda k: (-total[k], k)))
    return (
        f"the runs computed in different arithmetic ({mix}): a difference between groups may be "
        "the hardware's; train them all with one trainer.device and trainer.precision"
    )


def baseline_of(
    groups: Sequence[Group], baseline: str, by: Sequence[str] | None
) -> list[int | None]:
    """Per group, the index of the baseline group with the same other settings (itself if it
    is one; None if there is none)."""
    key, value, negated = parse_assignment(baseline, "--baseline")
    if negated:
        raise CompareError("--baseline expects key=value, e.g. reg=none")
    if by and key not in by:
        raise CompareError(f"--baseline key {key!r} must be one of the --by keys ({','.join(by)})")

    def rest(g: Group) -> str:
        other = {k: v for k, v in g.settings.items() if not under(k, key)}
        return json.dumps(other, sort_keys=True, default=str)

    def is_base(g: Group) -> bool:
        return matches(key, g.settings[key] if by else get_key(g.runs[0].config, key), value)

    bases = {rest(g): i for i, g in enumerate(groups) if is_base(g)}
    if not bases:
        seen = sorted({label(key, get_key(g.runs[0].config, key)) for g in groups})
        raise CompareError(f"no group has {key}={value}; values present: {', '.join(seen)}")
    return [bases.get(rest(g)) for g in groups]


def factorial_cells(
    groups: Sequence[Group], factors: Sequence[str] | None
) -> tuple[list[str], dict[tuple[int, ...], Group]]:
    """The 2^k design over regularizers: factor names and {(0/1 per factor): group}.

    factors None: every regularizer any group uses. Groups that use a regularizer outside the
    factors are not part of the design. Raises CompareError for a design that is not full.
    """
    regs = [set(get_key(g.runs[0].config, "reg") or {}) - {"none"} for g in groups]
    names = list(factors) if factors else sorted(set().union(*regs))
    if len(names) < 2:
        raise CompareError(
            f"--factorial needs at least 2 regularizers switched on and off, found {names or 'none'}"
        )
    cells: dict[tuple[int, ...], Group] = {}
    for g, r in zip(groups, regs, strict=True):
        if not r <= set(names):
            continue
        cell = tuple(int(n in r) for n in names)
        if cell in cells:
            raise CompareError(
                f"two groups form the cell {_cell_name(names, cell)} ({cells[cell].name} and "
                f"{g.name}); keep one with --filter (e.g. --filter model=mlp)"
            )
        cells[cell] = g
    missing = [c for c in np.ndindex(*[2] * len(names)) if c not in cells]
    if missing:
        shown = ", ".join(_cell_name(names, c) for c in missing)
        raise CompareError(
            f"the runs do not form a full 2^{len(names)} design over {','.join(names)}: "
            f"missing cells {shown}; run them or name fewer factors with --factors"
        )
    return names, cells


def _cell_name(names: Sequence[str], cell: tuple[int, ...]) -> str:
    return "+".join(n for n, on in zip(names, cell, strict=True) if on) or "none"
