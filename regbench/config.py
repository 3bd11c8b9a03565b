"""The config: where `conf/` (and the user's own folder) lives, its groups, the run names."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def _conf_dir() -> Path:
    # an installed wheel carries conf/ inside the package (pyproject maps it there at build time);
    # a checkout (editable install, PYTHONPATH) keeps it at the top of the repo
    here = Path(__file__).resolve().parent
    return next((d for d in (here / "conf", here.parent / "conf") if d.is_dir()), here / "conf")


CONF_DIR = _conf_dir()
GROUPS = ("data", "model", "reg", "optim", "sched", "init", "seeds", "trainer")
STREAMS = ("init", "order", "aug", "dropout")  # streams.SOURCES; each can be pinned in seeds.*
# the user's own config folder: `--config-dir DIR` sets it (for this process and every job it
# starts), else ./regbench_conf where it exists; its groups add to conf/'s, its modules import
USER_CONF_ENV = "REGBENCH_CONFIG_DIR"
USER_CONF_DEFAULT = "regbench_conf"
# Run-folder names that `regbench compare` reads live here, not in runs.py: compare must not
# import torch. Keys that do not change what a run computes: resume=true continues a run whatever
# they say.
BOOKKEEPING = (
    "resume",
    "out_dir",
    "name",
    "sweep_name",
    "data.root",
    "data.download",
    "trainer.device",
    "trainer.compile",  # like the device: the same computation, other kernels
    "trainer.channels_last",  # likewise: another memory order, the same values
    "trainer.eval_batch_size",  # likewise: the same forward passes, in other chunks
    "trainer.progress",
    "trainer.loggers",
)
TEST_OUTPUTS = "test_outputs.npz"  # a run's test-split outputs, for compare --ensemble


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
    """Readable run folder name: [<data>-]<model>-<regs>-<optim>-s<seed>[-<other swept overrides>].

    The dataset is named when it is not the default: digits and MNIST runs never share a name.
    """
    seed = "+".join(map(str, cfg.seed)) if OmegaConf.is_list(cfg.seed) else cfg.seed
    name = f"{cfg.model.name}-{'+'.join(cfg.reg.keys())}-{cfg.optim.name}-s{seed}"
    seeds = cfg.get("seeds")
    if seeds is not None and seeds.name != "all":  # which source follows seed, the rest pinned
        name += f"-seeds={seeds.name}"
    elif seeds is not None:  # pins given by hand: seeds.order=3 -> -order3
        name += "".join(f"-{s}{seeds[s]}" for s in STREAMS if seeds[s] is not None)
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
