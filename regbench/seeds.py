"""The random streams of a run and the seed each one draws from (no torch): one stream per source
of variance, each pinned in `seeds.*` or following `seed` (run/streams.py turns them into
generators)."""

from __future__ import annotations

from omegaconf import DictConfig

# the random streams of a run besides the split, one per source of variance
STREAMS = ("init", "order", "aug", "dropout")


def source_seed(value: int, source: str, *index: int) -> int:
    """A 63-bit seed for `source` (and sub-stream `index`, e.g. a layer) from a seed value.

    SeedSequence(value, spawn_key=(i, ...)) is the i-th child of SeedSequence(value).spawn: the
    streams are statistically independent, and pinning `seeds.order=3` gives exactly the batch
    order that seed=3 would.
    """
    import numpy as np  # here, not at the top: the command line starts without it

    ss = np.random.SeedSequence(value, spawn_key=(STREAMS.index(source), *index))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def stream_value(cfg: DictConfig, source: str) -> int:
    """The seed value a source follows: its pin `seeds.<source>` if set, else `seed`."""
    pinned = cfg.seeds[source]
    return int(cfg.seed if pinned is None else pinned)
