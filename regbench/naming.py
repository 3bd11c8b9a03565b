"""Run folder names, and a job's members: a list of seeds is a job of several runs, each named and
configured exactly as its solo run (no torch)."""

from __future__ import annotations

import copy
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from regbench.config import DEFAULTS
from regbench.seeds import STREAMS

FUSED_DIR = ".fused"  # in a sweep folder: Hydra's own (empty) folders of fused jobs, while they run


def run_name(cfg: Any, extra: str = "") -> str:
    """Readable run folder name: [<data>-]<model>-<regs>-<optim>-s<seed>[-transfer=<t>][-aux=<a>]
    [-<other swept overrides>]. cfg: a run's DictConfig, or any mapping that reads like one
    (sweep's plan of many runs).

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
    if cfg.data.name != DEFAULTS["data"]:  # the default dataset goes unnamed
        name = f"{cfg.data.name}-{name}"
    if extra:
        name += "-" + re.sub(r"[^A-Za-z0-9_.+=,-]", "_", extra.replace("/", "."))
    return name


def _sweep_run_name(*, _root_: DictConfig) -> str:
    # hydra.sweep.subdir: the job's folder inside a sweep, named from the job's own config so that
    # rerunning the same sweep maps every job to the same folder (resume, skip finished runs).
    name = run_name(_root_, _root_.hydra.job.override_dirname)
    # a fused job (seed=[0,1,2]): its members write the solo runs' folders; Hydra's is hidden
    return f"{FUSED_DIR}/{name}" if OmegaConf.is_list(_root_.seed) else name


# conf/config.yaml's hydra.sweep.subdir calls it: registered wherever configs are composed
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
