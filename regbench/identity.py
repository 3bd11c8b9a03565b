"""A sweep's identity: the overrides that change a run's result, parsed by Hydra, order-free,
hashed into its folder's name; and the folder an earlier regbench gave the same sweep."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from regbench import folder
from regbench.compose import compose_overrides, parse_error
from regbench.config import ConfigError


def parse_overrides(overrides: list[str]) -> list[Override]:
    """Hydra's parse of command-line overrides; ConfigError naming the first bad one."""
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        raise ConfigError(parse_error(str(exc), overrides)) from None


def short_hash(items: list[str]) -> str:
    """8 hex digits naming a set of overrides (order-free): a sweep folder's suffix."""
    return hashlib.sha1("\n".join(sorted(items)).encode()).hexdigest()[:8]


# not part of a sweep's identity besides the bookkeeping keys (folder.BOOKKEEPING): its seeds (more
# seeds extend a sweep) and how its runs are grouped into jobs
NOT_IDENTITY = ("seed", "trainer.fuse")


def identity(overrides: list[str], defaults_count: bool = False) -> list[str]:
    """What names a sweep's folder: its overrides that change a run's result, each list of values
    in sorted order (reg=dropout,none is reg=none,dropout); the keys sorted too. A single value the
    config has anyway (data=digits, trainer.epochs=20 at their defaults) names nothing, unless
    defaults_count (how regbench 0.2 named sweeps)."""
    parsed = parse_overrides(overrides)
    kept: list[tuple[str, Override | None]] = []  # a single value keeps its parse
    for o, p in zip(overrides, parsed, strict=True):
        bare = p.get_key_element().lstrip("~+")
        if p.is_hydra_override() or bare in NOT_IDENTITY or folder.is_bookkeeping(bare):
            continue
        if p.is_interval_sweep():  # a range a search sweeper draws from, as written
            kept.append((o, None))
        elif p.is_sweep_override():
            kept.append(
                (f"{p.get_key_element()}={','.join(sorted(p.sweep_string_iterator()))}", None)
            )
        else:
            kept.append((o, p))
    if defaults_count or all(p is None for _, p in kept):  # nothing to hold against the defaults
        return sorted(o for o, _ in kept)
    base = compose_overrides([], with_hydra=True)
    groups = set(base.hydra.runtime.choices)
    picked = {  # the groups set to another option than their default, or swept
        p.get_key_element()
        for p in parsed
        if p.get_key_element() in groups
        and (p.is_sweep_override() or not _as_default(p, base, groups, set()))
    }
    return sorted(o for o, p in kept if p is None or not _as_default(p, base, groups, picked))


def _as_default(p: Override, base: DictConfig, groups: set[str], picked: set[str]) -> bool:
    """A single value the default config has: a group's default option, or a key's default value
    while no override picks the group it comes from (nor seeds, which sets keys anywhere)."""
    key = p.get_key_element()
    if key != key.lstrip("~+"):
        return False
    if key in groups:
        return base.hydra.runtime.choices[key] == p.get_value_element_as_str()
    if key.split(".")[0] in picked or "seeds" in picked:
        return False
    value = OmegaConf.select(base, key, default=None)
    if isinstance(value, DictConfig) or value is None:
        return False
    plain = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return bool(plain == p.value())


def check_repeats(parsed: list[Override]) -> None:
    """ConfigError when a swept key lists a value twice: the same run would be launched, and
    counted, twice (seed=0,0,1)."""
    for p in parsed:
        # an interval has no values to list (a search sweeper draws from it)
        if p.is_sweep_override() and not p.is_interval_sweep() and not p.is_hydra_override():
            values = list(p.sweep_string_iterator())
            if twice := sorted({v for v in values if values.count(v) > 1}):
                raise ConfigError(
                    f"{p.get_key_element()} lists {', '.join(twice)} twice; give each value once"
                )


def check_listed(parsed: list[Override], searchable: bool = True) -> None:
    """ConfigError for an interval: a grid lists its values, only a search draws from a range
    (not a staged sweep's: it compares arms)."""
    how = (
        "add hydra/sweeper=optuna, or list" if searchable else "--until-decided compares arms: list"
    )
    for p in parsed:
        if p.is_interval_sweep() and not p.is_hydra_override():
            raise ConfigError(
                f"{p.input_line} is a range to search, not values to list: {how} values "
                f"({p.get_key_element()}=a,b,c)"
            )


def found_elsewhere(sweep_dir: Path, former: list[str]) -> Path | None:
    """The folder an earlier regbench gave this sweep (names it hashed differently: every override
    in the order given; defaults spelt out) when today's does not exist: its runs are found."""
    if sweep_dir.exists():
        return None
    found = [sweep_dir.with_name(n) for n in former if n != sweep_dir.name]
    return next((f for f in found if f.is_dir()), None)
