"""A sweep's identity: the overrides that change a run's result, parsed by Hydra, order-free,
hashed into its folder's name; and the folder an earlier regbench gave the same sweep."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException

from regbench import folder
from regbench.compose import parse_error
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


def identity(overrides: list[str]) -> list[str]:
    """What names a sweep's folder: its overrides that change a run's result, each list of values
    in sorted order (reg=dropout,none is reg=none,dropout); the keys sorted too."""
    out = []
    for o, p in zip(overrides, parse_overrides(overrides), strict=True):
        key = p.get_key_element()
        bare = key.lstrip("~+")
        if p.is_hydra_override() or bare in NOT_IDENTITY or folder.is_bookkeeping(bare):
            continue
        if p.is_sweep_override():
            out.append(f"{key}={','.join(sorted(p.sweep_string_iterator()))}")
        else:
            out.append(o)
    return sorted(out)


def check_repeats(parsed: list[Override]) -> None:
    """ConfigError when a swept key lists a value twice: the same run would be launched, and
    counted, twice (seed=0,0,1)."""
    for p in parsed:
        if p.is_sweep_override() and not p.is_hydra_override():
            values = list(p.sweep_string_iterator())
            if twice := sorted({v for v in values if values.count(v) > 1}):
                raise ConfigError(
                    f"{p.get_key_element()} lists {', '.join(twice)} twice; give each value once"
                )


def found_elsewhere(sweep_dir: Path, legacy: str) -> Path | None:
    """The folder an earlier regbench named this sweep (its name hashed every override, in the
    order given) when it exists and the folder of today's name does not: its runs are found."""
    old = sweep_dir.with_name(legacy)
    return old if legacy != sweep_dir.name and not sweep_dir.exists() and old.is_dir() else None
