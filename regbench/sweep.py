"""regbench sweep: expand a grid or a named study and launch it with Hydra's multirun.

Hydra does the launching (sweeper and launcher plugins); this module plans the runs up front
(names, validity, what is already done); index.py keeps `<sweep dir>/sweep.json` current.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.types import Glob, Override
from omegaconf import OmegaConf

from regbench import disk, folder
from regbench.compose import check, compose_overrides
from regbench.config import ConfigError, conf_dirs, group_options, searchpath_override
from regbench.datasets import val_size
from regbench.identity import (
    check_listed,
    check_repeats,
    found_elsewhere,
    identity,
    parse_overrides,
    short_hash,
)
from regbench.index import status_of
from regbench.naming import run_name
from regbench.pitfalls import warnings
from regbench.run import workers
from regbench.schema import check_seed
from regbench.schema_base import NAME_PATTERN, NAME_RULE

STUDY_KEYS = ("sweep_name", "overrides", "question", "pretrain")  # a study file's top-level keys
LARGE_GRID = 1000  # jobs: a grid this large says its size before it is planned
CALLBACK = "+hydra.callbacks.regbench_sweep._target_=regbench.index.Tracker"
REFUSED = 2  # launch's code for a write the disk refused, said in one line: stop, write no more
STOPPED = (REFUSED, 130, 143)  # a full disk, Ctrl-C, SIGTERM: stop there; the same command goes on


# ---- planning: overrides -> sweep name, Hydra argv and the list of runs --------------------------
@dataclass
class Plan:
    name: str
    dir: Path
    argv: list[str]  # what follows `--multirun` for Hydra
    sweeper: str
    launcher: str
    runs: list[dict[str, Any]] = field(default_factory=list)  # empty when the sweeper picks runs
    swept: list[str] = field(default_factory=list)  # keys that vary between runs
    warnings: dict[str, list[str]] = field(default_factory=dict)  # run name: known-bad combinations


def study_spec(name: str) -> dict[str, Any]:
    """study/NAME.yaml (the user's folder first, then conf/) as a mapping, checked."""
    path = next((p for d in conf_dirs() if (p := d / "study" / f"{name}.yaml").is_file()), None)
    if path is None:
        raise ConfigError(
            f"unknown study '{name}'; choose from: {', '.join(group_options('study'))}"
        )
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise ConfigError(f"{path} is not valid YAML{line}; fix the file") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("overrides"), dict):
        raise ConfigError(f"{path} needs an 'overrides' mapping (key: value, e.g. seed: 0,1,2)")
    if not isinstance(spec.get("question", {}), dict):
        raise ConfigError(f"{path}: 'question' must be a mapping (baseline, delta, alpha, ...)")
    from regbench.question import check_question  # scipy's: only for a study

    check_question(spec.get("question") or {}, f"{path}'s question: block")  # staged or not
    if unknown := [k for k in spec if k not in STUDY_KEYS]:  # a misspelt key would be ignored
        raise ConfigError(
            f"{path}: unknown key '{unknown[0]}'; a study has {', '.join(STUDY_KEYS)}"
        )
    return spec


def load_study(name: str) -> tuple[str, list[str]]:
    """A study's `sweep_name` and its `overrides` as Hydra override strings."""
    spec = study_spec(name)
    overrides = [
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in spec["overrides"].items()
    ]
    return spec.get("sweep_name", name), overrides


def merged(args: list[str]) -> tuple[str, str | None, list[str]]:
    """The command's arguments with its study's overrides: (the study's sweep name or "grid", the
    study or None, the overrides; the user's win over the study's, key by key)."""
    study = next((a.split("=", 1)[1] for a in args if a.startswith("study=")), None)
    user = [a for a in args if not a.startswith("study=")]
    base_name, base = load_study(study) if study else ("grid", [])
    user_keys = {o.get_key_element() for o in parse_overrides(user)}
    kept = [
        o
        for o, p in zip(base, parse_overrides(base), strict=True)
        if p.get_key_element() not in user_keys
    ]
    return base_name, study, kept + user


def _hydra_defaults(
    hydra: list[str], keys: dict[str, Override], swept: list[str], base_cfg: Any
) -> list[str]:
    """The Hydra settings a sweep needs unless the user gave them: optuna maximises, submitit's
    folder, run folder names, Ray's object store."""
    sweeper = base_cfg.runtime.choices["hydra/sweeper"]
    launcher = base_cfg.runtime.choices["hydra/launcher"]
    added: list[str] = []
    if sweeper == "optuna" and not any(h.startswith("hydra.sweeper.direction=") for h in hydra):
        added.append("hydra.sweeper.direction=maximize")  # the job returns best val acc
    folder = "hydra.launcher.submitit_folder"
    if launcher.startswith("submitit") and not any(h.startswith(folder) for h in hydra):
        # the plugin's default .submitit/%j leaves an empty folder literally named %j behind
        added.append(f"{folder}=${{hydra.sweep.dir}}/.submitit")
    exclude = "hydra.job.config.override_dirname.exclude_keys"
    if not any(h.startswith(exclude) for h in hydra):
        # folder names: the run name plus only what varies (no `trainer.epochs=1` in every name)
        names = list(base_cfg.job.config.override_dirname.exclude_keys)
        names += [k.lstrip("~+") for k in keys if k not in swept and k.lstrip("~+") not in names]
        added.append(f"{exclude}=[{','.join(names)}]")
    if launcher == "ray" and not any(
        "hydra.launcher.ray.init.object_store_memory" in h for h in hydra
    ):
        # hydra-ray-launcher 1.2.2 passes object_store_memory=75 MB to ray.init, which Ray refuses
        # when joining a running cluster (address=auto); null leaves Ray's own default (hydra #2893)
        added.append("+hydra.launcher.ray.init.object_store_memory=null")
    return added


def plan(args: list[str], named_by: list[str] | None = None) -> Plan:
    """Turn the command's arguments into the sweep: its name, folder, runs and Hydra's argv.
    named_by: the keys that name the run folders (default: those swept here; a staged sweep
    launches one arm at a time and names its folders as the whole grid would)."""
    base_name, study, overrides = merged(args)
    user = [a for a in args if not a.startswith("study=")]
    overrides = expand_globs(overrides)
    parsed = parse_overrides(overrides)
    if any(p.get_key_element().startswith("hydra.sweep.subdir") for p in parsed):
        raise ConfigError(
            "hydra.sweep.subdir is regbench's (each run's folder is named from its config); "
            "place the sweep with sweep_name=... or out_dir=..."
        )
    check_repeats(parsed)
    job = [o for o, p in zip(overrides, parsed, strict=True) if not p.is_hydra_override()]
    hydra = [o for o, p in zip(overrides, parsed, strict=True) if p.is_hydra_override()]
    keys = {p.get_key_element(): p for p in parsed if not p.is_hydra_override()}
    swept = [k for k, p in keys.items() if p.is_sweep_override()]

    # the same command maps to the same folder (so a rerun resumes); launchers do not change it
    legacy: list[str] = []
    if "sweep_name" in keys:
        name = str(keys["sweep_name"].value())  # sweep_name="a b": the value, not its quotes
    else:  # named by what changes the runs' results (identity), not by seeds or bookkeeping
        name, legacy = _name(base_name, study, user, job)
        job.append(f"sweep_name={name}")
    if not re.fullmatch(NAME_PATTERN, name):  # a/b would nest sweep folders: refused up front
        raise ConfigError(f"invalid value for 'sweep_name' ({name!r}): {NAME_RULE}")
    job = fuse_seeds(job, keys)
    base_cfg = _where(job, hydra)
    if legacy and (old := found_elsewhere(Path(base_cfg.sweep.dir), legacy)):
        name, job = (
            old.name,
            [f"sweep_name={old.name}" if o.startswith("sweep_name=") else o for o in job],
        )
        base_cfg = _where(job, hydra)
    sweeper = base_cfg.runtime.choices["hydra/sweeper"]
    launcher = base_cfg.runtime.choices["hydra/launcher"]
    hydra += _hydra_defaults(hydra, keys, swept if named_by is None else named_by, base_cfg)
    hydra.append(CALLBACK)
    p = Plan(name, Path(base_cfg.sweep.dir), job + hydra, sweeper, launcher, [], swept)
    if sweeper != "basic":
        return p  # the sweeper (e.g. optuna) picks the runs as it goes: none to list up front

    p.runs, p.warnings = planned_runs(job, hydra, swept)
    return p


def _where(job: list[str], hydra: list[str]) -> Any:
    """The sweep folder and Hydra's settings (job keys left out: they may need a swept group)."""
    where = [o for o in job if o.split("=", 1)[0] in ("sweep_name", "out_dir")]
    return compose_overrides(where + hydra, with_hydra=True).hydra


def _name(
    base_name: str, study: str | None, user: list[str], job: list[str]
) -> tuple[str, list[str]]:
    """A study's name while the user's overrides leave its runs' results as they are, else the
    base name and the hash of the sweep's identity; and the names the same sweep had before
    (every override hashed as given: seeds, bookkeeping, the values' order; defaults spelt out)."""
    # the user's override of a study's key changes the study even when it spells a global default
    extra = identity([o for o in user if o in job], defaults_count=True)
    name = base_name if study and not extra else f"{base_name}-{short_hash(identity(job))}"
    content = [o for o in job if not o.startswith(("out_dir=", "trainer.fuse="))]
    by_content = [o for o in user if o in content]
    spelt = identity([o for o in user if o in job], defaults_count=True)
    former = [
        base_name if study and not by_content else f"{base_name}-{short_hash(content)}",
        base_name if study and not spelt else f"{base_name}-{short_hash(identity(job, True))}",
    ]
    return name, former


def planned_runs(
    job: list[str], hydra: list[str], swept: list[str]
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Every run of the grid with its folder and status, and the warnings by run name; ConfigError
    with one line per invalid combination, before any run starts. Each distinct config (the
    overrides but seed) is composed and checked once; its seeds only name folders."""
    parsed = parse_overrides(job)
    check_listed(parsed)
    for p in parsed:  # seed=range(0,0), seed=[] as a sweep: a grid of no runs
        if p.is_sweep_override() and not list(p.sweep_string_iterator()):
            raise ConfigError(
                f"{p.input_line} sweeps no value: an empty grid runs nothing; give at least one value"
            )
    jobs = BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]
    if len(jobs) >= LARGE_GRID:  # composing takes a moment per distinct config: say why
        print(f"planning a grid of {len(jobs):,} jobs ...", file=sys.stderr, flush=True)
    seeds = _seed_values(job)
    by_config: dict[tuple[str, ...], list[list[str]]] = {}
    for overrides in jobs:
        by_config.setdefault(tuple(o for o in overrides if not o.startswith("seed=")), []).append(
            overrides
        )
    runs, warned, invalid = [], {}, []
    for config, group in by_config.items():
        try:
            cfg = compose_overrides(list(config) + hydra, with_hydra=True)  # seeds: entries()
            check(cfg)
        except ConfigError as exc:
            invalid.append(f"{_combination(config, swept)}: {exc}")
            continue
        lines, names = warnings(cfg, val_size(cfg.data)), _Names(cfg)
        for overrides in group:
            seed = next((seeds[o] for o in overrides if o.startswith("seed=")), None)
            try:
                for entry in names.entries(overrides, seed):
                    entry |= status_of(Path(entry["dir"]))
                    runs.append(entry)
                    if lines:
                        warned[entry["name"]] = lines
            except ConfigError as exc:
                invalid.append(f"{_combination(overrides, swept)}: {exc}")
    if invalid:
        raise ConfigError("\n".join(dict.fromkeys(invalid)))
    return runs, warned


def _combination(overrides: Any, swept: list[str]) -> str:
    """The swept values that make a job what it is (all its overrides where none is swept)."""
    keys = [o for o in overrides if o.split("=", 1)[0] in swept]
    rest = [o for o in overrides if not o.startswith(("sweep_name=", "out_dir="))]
    return " ".join(keys or rest) or "the defaults"


def _seed_values(job: list[str]) -> dict[str, Any]:
    """`seed=<value>` as split_arguments writes each job's seed -> the value Hydra parsed (one
    parse of the sweep, not one per job: Hydra's parser takes milliseconds an override)."""
    seed = next((p for p in parse_overrides(job) if p.get_key_element() == "seed"), None)
    if seed is None:
        return {}
    if not seed.is_sweep_override():
        return {f"seed={seed.get_value_element_as_str()}": seed.value()}
    strings = seed.sweep_string_iterator()
    return {f"seed={s}": v for s, v in zip(strings, seed.sweep_iterator(), strict=True)}


class _Keys(dict):
    """A plain mapping that reads like a config (cfg.model.name): run_name on it takes
    microseconds, where a DictConfig's attribute reads take a millisecond a name."""

    __getattr__ = dict.__getitem__


class _Names:
    """The run folders of one distinct config's jobs, named as Hydra's sweep would (hydra.sweep.dir
    and subdir): resolving those interpolations takes milliseconds, so the folder is read once and
    each seed's name is made from a small copy of the keys a run's name reads."""

    def __init__(self, cfg: Any) -> None:
        self.dir = Path(cfg.hydra.sweep.dir)
        self.dirname = str(cfg.hydra.job.override_dirname)
        seeds = cfg.get("seeds")
        self.light = _Keys(
            model=_Keys(name=cfg.model.name),
            reg=_Keys.fromkeys(cfg.reg),
            optim=_Keys(name=cfg.optim.name),
            data=_Keys(name=cfg.data.name),
            transfer=_Keys(name=cfg.transfer.name),
            aux=_Keys(name=cfg.aux.name),
            seeds=None
            if seeds is None
            else _Keys(cast(dict, OmegaConf.to_container(seeds, resolve=True))),
        )
        self.default = OmegaConf.to_object(cfg.seed) if OmegaConf.is_list(cfg.seed) else cfg.seed

    def entries(self, overrides: list[str], seed: Any) -> list[dict[str, Any]]:
        """The runs of one job (a list-valued seed: one per seed, each in its solo run's folder);
        the seed is checked here, the rest of the config was checked once for all its seeds."""
        seed = self.default if seed is None else seed
        check_seed(seed)
        fused = isinstance(seed, list)
        rest = [o for o in overrides if not o.startswith("seed=")]
        entries = []
        for s in seed if fused else [seed]:
            self.light["seed"] = s
            run_dir = self.dir / run_name(self.light, self.dirname)
            entries.append(
                {
                    "name": run_dir.name,
                    "dir": str(run_dir),
                    "overrides": [*rest, f"seed={s}"] if fused else overrides,
                    "logs": [str(run_dir / folder.LOG)],
                }
            )
        return entries


def expand_globs(overrides: list[str]) -> list[str]:
    """Hydra's glob sweeps of a config group (reg=glob(l*), model=glob(*,exclude=vgg)) as the
    comma lists of its options they match (the basic sweeper needs Hydra's config loader for
    them, which a plan does not start)."""
    out = []
    for o, p in zip(overrides, parse_overrides(overrides), strict=True):
        if p.value_type is not None and p.value_type.name == "GLOB_CHOICE_SWEEP":
            key = p.get_key_element()
            names = cast(Glob, p.value()).filter(group_options(key))
            if not names:
                raise ConfigError(
                    f"{o} matches no {key} option; choose from: {', '.join(group_options(key))}"
                )
            o = f"{key}={','.join(names)}"
        out.append(o)
    return out


def fuse_seeds(job: list[str], keys: dict[str, Override]) -> list[str]:
    """trainer.fuse=K: the seed sweep becomes a sweep of seed lists of up to K seeds each
    (seed=0,1,2,3 trainer.fuse=2 -> seed=[0,1],[2,3]); each list is one fused job (job.py)."""
    fuse = keys.get("trainer.fuse")
    if fuse is None:
        return job
    if fuse.is_sweep_override():
        raise ConfigError("trainer.fuse cannot be swept; give one value, e.g. trainer.fuse=8")
    k = int(fuse.get_value_element_as_str())
    seed = keys.get("seed")
    if k < 2 or seed is None or not seed.is_sweep_override():
        return job
    seeds = list(seed.sweep_string_iterator())
    lists = ",".join(f"[{','.join(seeds[i : i + k])}]" for i in range(0, len(seeds), k))
    return [o for o in job if parse_overrides([o])[0].get_key_element() != "seed"] + [
        f"seed={lists}"
    ]


def launch(p: Plan) -> int:
    """Hydra's multirun of the plan; its exit code (130: Ctrl-C, 143: SIGTERM, REFUSED). sweep.json
    is refreshed by the caller, unless REFUSED."""
    workers.fork_from_server(p.launcher)  # before torch loads here, so that the two overlap
    from regbench.run.job import Terminated, hydra_app, stop_on_sigterm  # torch loads here

    sys.argv = ["regbench", "--multirun", *searchpath_override(), *p.argv]
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # a launcher's error comes back here, not as a traceback
    stop_on_sigterm()  # a run killed in this process is marked interrupted, as Ctrl-C marks it
    try:
        hydra_app()
    except SystemExit as exc:  # Hydra reports its own errors and exits; a job, a refused write
        return exc.code if isinstance(exc.code, int) else 1
    except Terminated:
        return 143
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the launcher gave up, e.g. on a SLURM job cancelled with scancel
        if disk.refused(exc):  # a full or read-only disk under a job: the same line as train's
            print(f"error: {disk.write_error(exc, p.dir)}", file=sys.stderr)
            return REFUSED
        detail = " ".join(str(exc).splitlines()[:2]) or type(exc).__name__
        print(f"error: hydra/launcher={p.launcher}: {detail}", file=sys.stderr)
        return 1
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before
    return 0
