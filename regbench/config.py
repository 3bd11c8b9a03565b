"""The config: where `conf/` (and the user's own folder) lives, its groups, the run names."""

from __future__ import annotations

import copy
import os
import re
from functools import cache
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict


def _conf_dir() -> Path:
    # an installed wheel carries conf/ inside the package (pyproject maps it there at build time);
    # a checkout (editable install, PYTHONPATH) keeps it at the top of the repo
    here = Path(__file__).resolve().parent
    return next((d for d in (here / "conf", here.parent / "conf") if d.is_dir()), here / "conf")


CONF_DIR = _conf_dir()
GROUPS = ("data", "model", "reg", "optim", "sched", "init", "seeds", "trainer")
# the random streams of a run besides the split, one per source of variance (run/streams.py);
# each can be pinned in seeds.*
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


def arithmetic(precision: str, device_type: str) -> str:
    """The number format a run computes in: bf16 where asked, or under "auto" on CUDA; else fp32
    (bf16 autocast on CPUs is several times slower: benchmarks/README.md)."""
    return (
        "bf16" if precision == "bf16" or (precision == "auto" and device_type == "cuda") else "fp32"
    )


LINE = 100  # plain-words lines (help, compare --summary) wrap here, or at a narrower terminal

# the user's own config folder: `--config-dir DIR` sets it (for this process and every job it
# starts), else ./regbench_conf where it exists; its groups add to conf/'s, its modules import
USER_CONF_ENV = "REGBENCH_CONFIG_DIR"
USER_CONF_DEFAULT = "regbench_conf"
# the packaged datasets' sizes, for what must not load the data (sweep --dry-run's warnings,
# compare's test-set noise floor): the training pool, and the test split where the dataset fixes it
# (digits: one pool of 1,797 images that data.test_fraction is carved from)
POOL_SIZES = {"digits": 1797, "mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000, "cifar100": 50_000}  # fmt: skip
TEST_SIZES = {"mnist": 10_000, "fashion_mnist": 10_000, "cifar10": 10_000, "cifar100": 10_000}


class ConfigError(ValueError):
    """A bad config or bad input: reported as one line, exit code 2."""


def user_conf_dir() -> Path | None:
    """The user's config folder, absolute, or None."""
    given = os.environ.get(USER_CONF_ENV)
    if given:
        return Path(given).expanduser().resolve()
    default = Path(USER_CONF_DEFAULT)
    return default.resolve() if default.is_dir() else None


def conf_dirs() -> list[Path]:
    """Where config groups are read from: the user's folder first, then the packaged conf/."""
    user = user_conf_dir()
    return [user, CONF_DIR] if user else [CONF_DIR]


def searchpath_override() -> list[str]:
    """The Hydra override that adds the user's folder to the search path (none without one)."""
    user = user_conf_dir()
    return [f"hydra.searchpath=[file://{user}]"] if user else []


def group_options(group: str) -> list[str]:
    """The options of a config group, read from conf/ and the user's folder (not a hard-coded list)."""
    return sorted({p.stem for d in conf_dirs() for p in (d / group).glob("*.yaml")})


@cache
def default_data() -> str:
    """The dataset conf/config.yaml selects by default (run names leave it out)."""
    defaults = OmegaConf.load(CONF_DIR / "config.yaml").defaults
    return next(d.data for d in defaults if isinstance(d, DictConfig) and "data" in d)


def run_name(cfg: DictConfig, extra: str = "") -> str:
    """Readable run folder name: [<data>-]<model>-<regs>-<optim>-s<seed>[-transfer=<t>][-aux=<a>]
    [-<other swept overrides>].

    The dataset is named when it is not the default, the transfer and the auxiliary task when they
    are not none: runs that differ only in them never share a name.
    """
    seed = "+".join(map(str, cfg.seed)) if OmegaConf.is_list(cfg.seed) else cfg.seed
    name = f"{cfg.model.name}-{'+'.join(cfg.reg.keys())}-{cfg.optim.name}-s{seed}"
    seeds = cfg.get("seeds")
    if seeds is not None and seeds.name != "all":  # which source follows seed, the rest pinned
        name += f"-seeds={seeds.name}"
    elif seeds is not None:  # pins given by hand: seeds.order=3 -> -order3
        name += "".join(f"-{s}{seeds[s]}" for s in STREAMS if seeds[s] is not None)
    for group in ("transfer", "aux"):  # from scratch, one task: the defaults, not named
        choice = cfg.get(group)
        if choice is not None and choice.name != "none":
            name += f"-{group}={choice.name}"
    if cfg.data.name != default_data():
        name = f"{cfg.data.name}-{name}"
    if extra:
        name += "-" + re.sub(r"[^A-Za-z0-9_.+=,-]", "_", extra.replace("/", "."))
    return name


FUSED_DIR = ".fused"  # in a sweep folder: Hydra's own (empty) folders of fused jobs, while they run


def _sweep_run_name(*, _root_: DictConfig) -> str:
    # hydra.sweep.subdir: the job's folder inside a sweep, named from the job's own config so that
    # rerunning the same sweep maps every job to the same folder (resume, skip finished runs).
    name = run_name(_root_, _root_.hydra.job.override_dirname)
    # a fused job (seed=[0,1,2]): its members write the solo runs' folders; Hydra's is hidden
    return f"{FUSED_DIR}/{name}" if OmegaConf.is_list(_root_.seed) else name


if not OmegaConf.has_resolver("regbench.run_name"):
    OmegaConf.register_new_resolver("regbench.run_name", _sweep_run_name)


def member_configs(cfg: DictConfig) -> list[DictConfig]:
    """One config per seed of a list-valued `seed` (a job of several runs), each exactly a solo
    run's config (trainer.fuse says how runs were grouped, not what a run is: it is 1 in every
    member's config.yaml); a plain seed is a job of one."""
    if not OmegaConf.is_list(cfg.seed):
        return [cfg]
    out = []
    for s in cfg.seed:
        m = copy.deepcopy(cfg)
        with open_dict(m):
            m.seed, m.trainer.fuse = s, 1
            if cfg.get("name"):
                m.name = f"{cfg.name}-s{s}"
        out.append(m)
    return out


def split_sizes(cfg: DictConfig) -> tuple[int, int] | None:
    """(training pool, validation split) as data.load splits a packaged dataset (None: the user's
    dataset, whose size is known only once loaded); data.subset takes from the training pool."""
    n = POOL_SIZES.get(cfg.get("name"))
    if n is None:
        return None
    if cfg.name == "digits":  # its test split is carved from the same pool first
        n -= round(n * cfg.test_fraction)
    n_val = round(n * cfg.val_fraction)
    return n - n_val, n_val


def val_size(cfg: DictConfig) -> int | None:
    """The validation split's size, computed as data.load splits (None: unknown dataset)."""
    sizes = split_sizes(cfg)
    return sizes[1] if sizes else None
