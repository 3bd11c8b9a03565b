"""Groups in, records out: the numbers behind every table, for each group and each comparison.

This is where run folders meet the statistics: values are picked per group (paired by seed where
the seeds match), handed to `stats` as arrays, and the answers flattened into records (one dict of
raw numbers per row) that every output format renders.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from regbench.compare.groups import Group, factorial_cells, get_key, matches
from regbench.compare.load import STATUS_ORDER, CompareError, Run, read_test_outputs, test_size
from regbench.folder import TEST_OUTPUTS
from regbench.record import FIELDS, GRID, LOWER_IS_BETTER, MEANS
from regbench.stats import decide
from regbench.stats import inference as stats

if TYPE_CHECKING:
    from regbench.compare.result import Inference
    from regbench.decisions import Decisions


def group_records(groups: Sequence[Group], metric: str) -> list[dict[str, Any]]:
    """One flat record of raw numbers per group (the data behind every output format)."""
    # the means beside the metric; those newer runs record, only where some run records them
    means = [k for k in MEANS if not FIELDS[k].newer or any(g.values(k).size for g in groups)]
    records = []
    for g in groups:
        values = g.values(metric)
        n, mean, std = stats.describe(values)
        params = sorted({int(v) for v in g.values("params")})
        records.append(
            {
                **g.labels,
                "n": n,
                f"{metric}_mean": mean,
                f"{metric}_std": std,
                f"{metric}_min": float(values.min()) if n else None,
                f"{metric}_max": float(values.max()) if n else None,
                **{k: stats.describe(g.values(k))[1] for k in means},
                "params": params[0] if len(params) == 1 else None,  # seeds never change the model
                "runs": len(g.runs),
                "statuses": statuses(g.runs),
            }
        )
    return records


def statuses(runs: Sequence[Run]) -> str:
    counts = Counter(r.status for r in runs)
    return ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if counts[s])


def _better(metric: str, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orient so that 'a beats b' means a better value of the metric."""
    return (b, a) if metric in LOWER_IS_BETTER else (a, b)


def _grid(g: Group, base: Group, metric: str) -> int | None:
    """n_test when the metric counts test images and both groups share one test set size."""
    if metric not in GRID:
        return None
    sizes = {test_size(r) for r in (*g.runs, *base.runs) if r.usable}
    return sizes.pop() if len(sizes) == 1 else None


def _compare(g: Group, base: Group, inf: Inference) -> tuple[stats.Comparison, dict[str, Any]]:
    """The comparison of one group with its baseline, paired when their seeds match."""
    a_seed, b_seed = g.by_seed(inf.metric), base.by_seed(inf.metric)
    if inf.common_seeds and a_seed and b_seed:
        shared = a_seed.keys() & b_seed.keys()
        a_seed, b_seed = ({s: x[s] for s in shared} for x in (a_seed, b_seed))
    is_paired = bool(a_seed and b_seed and a_seed.keys() == b_seed.keys() and len(a_seed) >= 2)
    if is_paired:
        seeds = sorted(a_seed)  # type: ignore[arg-type]
        a = np.array([a_seed[s] for s in seeds])  # type: ignore[index]
        b = np.array([b_seed[s] for s in seeds])  # type: ignore[index]
        grid = _grid(g, base, inf.metric)
        c = stats.paired(a, b, inf.test, inf.level, inf.reps, inf.seed, grid)
        sd = float(np.std(a - b, ddof=1))
    else:
        a, b = g.values(inf.metric), base.values(inf.metric)
        c = stats.welch(a, b, inf.level)
        sd = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2) if c.note == "" else 0.0
    pab, pab_low, pab_high = stats.prob_better(
        *_better(inf.metric, a, b), is_paired, inf.level, inf.reps, inf.seed
    )
    tost = None
    if c.p is not None and inf.delta is not None:
        tost = (
            decide.tost_paired(a - b, inf.delta)
            if is_paired
            else decide.tost_welch(a, b, inf.delta)
        )
    extra = {
        "p_better": pab,
        "p_better_low": pab_low,
        "p_better_high": pab_high,
        "p_tost": None if tost is None else float(tost),
        # the SD planning starts from, with its degrees of freedom (popped before output)
        "_plan": (sd, len(a) - 1 if is_paired else len(a) + len(b) - 2, is_paired),
    }
    return c, extra


def _decide(out: list[dict[str, Any]], tested: list[int], inf: Inference) -> None:
    """Verdicts (Holm at α/2 for each kind of claim, decide.py) and seeds planned for δ at
    α/(2m), the level Holm guarantees every one of the m comparisons."""
    p = np.array([out[i]["p"] for i in tested], float)
    q = np.array([np.nan if out[i]["p_tost"] is None else out[i]["p_tost"] for i in tested])
    codes = decide.verdict_codes(np.array([out[i]["delta"] for i in tested]), p, q, inf.alpha)
    q_adj = stats.adjust(q[np.isfinite(q)], "holm")
    adjusted = iter(q_adj)
    level = inf.alpha / (2 * max(len(tested), 1))
    for i, code, qi in zip(tested, codes, q, strict=True):
        out[i]["p_tost_adj"] = float(next(adjusted)) if np.isfinite(qi) else None
        out[i]["verdict"] = decide.verdict_name(int(code), inf.metric in LOWER_IS_BETTER)
    for r in out:
        sd, df, paired = r.pop("_plan", (0.0, None, False))
        tested_here = r.get("p") is not None  # no spread: no SD to plan from
        plan = decide.plan(sd, df, paired, inf.question, level) if tested_here else (None, None)
        r["seeds_detect"], r["seeds_equivalence"] = plan
        r.setdefault("p_tost_adj", None)
        r.setdefault("verdict", "undecided" if r["delta"] is not None else None)


def baseline_records(
    groups: Sequence[Group], bases: Sequence[int | None], inf: Inference
) -> list[dict[str, Any]]:
    """Per group: its comparison with its baseline group, the family's p-values adjusted."""
    out: list[dict[str, Any]] = []
    compared: list[tuple[int, stats.Comparison]] = []
    for i, (g, j) in enumerate(zip(groups, bases, strict=True)):
        note = "no baseline" if j is None else "baseline" if j == i else ""
        if (
            j is not None
            and not note
            and (not g.values(inf.metric).size or not groups[j].values(inf.metric).size)
        ):
            note = "no data"
        if note:
            out.append({"delta": None, "delta_note": note, "test": None, "significant": None})
            continue
        base = groups[j]  # type: ignore[index]
        c, extra = _compare(g, base, inf)
        compared.append((i, c))
        out.append(
            {
                "delta": c.diff,
                "delta_low": c.low,
                "delta_high": c.high,
                "delta_note": c.note,
                "test": c.test,
                "pairs_or_runs": c.n,
                "baseline": base.name,
                "n_baseline": int(base.values(inf.metric).size),
                "rho": c.rho,
                "p": c.p,
                **extra,
            }
        )
    tested = [(i, c) for i, c in compared if c.p is not None]
    adjusted = stats.adjust(np.array([c.p for _, c in tested]), inf.correction)
    for (i, _), p in zip(tested, adjusted, strict=True):
        out[i]["p_adj"] = float(p)
        out[i]["significant"] = bool(p < inf.alpha)
    for r in out:
        r.setdefault("p_adj", None)
        r.setdefault("significant", False if r["delta"] is not None else None)
    _decide(out, [i for i, _ in tested], inf)
    return out


def staged_verdicts(
    records: list[dict[str, Any]], groups: Sequence[Group], log: Decisions, baseline: str
) -> bool:
    """Put a staged sweep's verdicts (its decisions.json) on the records of its comparisons, with
    the seeds each was decided at (`staged_at`): the staged test decided them under its stopping
    rule, and a fixed-design verdict over the same runs would be a second, different answer.
    False (nothing changed) when the log answers another baseline."""
    if log.baseline != baseline:
        return False
    decided = [*log.verdicts, *(a for a in log.comparisons if a not in log.verdicts)]
    for arm in decided:
        want = [o.split("=", 1) for o in arm.split()]
        for r, g in zip(records, groups, strict=True):
            config = g.runs[0].config
            if r.get("delta") is not None and all(
                matches(k, get_key(config, k), v) for k, v in want
            ):
                r["verdict"], r["staged_at"] = log.verdict(arm), log.decided_at.get(arm)
    return True


def noise_floor(groups: Sequence[Group], metric: str) -> tuple[float, int, float] | None:
    """(binomial SE, test size, mean accuracy) of the test set behind test_acc, if one size."""
    if metric != "test_acc":
        return None
    used = [r for g in groups for r in g.runs if r.usable and r.value(metric) is not None]
    sizes = {test_size(r) for r in used}
    if len(sizes) != 1 or None in sizes:
        return None
    (n,) = sizes
    assert n is not None
    p = float(np.mean([r.value(metric) for r in used]))
    return stats.noise_floor(p, n), n, p


def factorial_records(
    groups: Sequence[Group], factors: Sequence[str] | None, inf: Inference
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray, list[str]]:
    """Main effects and two-way interactions over a full 2^k design of regularizers.

    Returns the effect records, x (n_runs, k) coded -1/+1, y (n_runs,) and the factor names.
    """
    names, cells = factorial_cells(groups, factors)
    xs, ys = [], []
    for cell, g in cells.items():
        values = g.values(inf.metric)
        if not values.size:
            raise CompareError(f"the cell {g.name} has no finished run with {inf.metric}")
        xs += [[2 * c - 1 for c in cell]] * len(values)
        ys += list(values)
    x, y = np.array(xs, dtype=float), np.array(ys)
    terms = 1 + len(names) + len(names) * (len(names) - 1) // 2
    if len(y) <= terms:
        raise CompareError(
            f"{len(y)} runs cannot estimate {terms} terms of a 2^{len(names)} design; "
            "run more seeds per cell (2 or more)"
        )
    effects = stats.factorial_effects(x, y, names, inf.level)
    adjusted = stats.adjust(np.array([e.p for e in effects]), inf.correction)
    records = [
        {
            "term": e.term,
            "effect": e.effect,
            "low": e.low,
            "high": e.high,
            "p": e.p,
            "p_adj": float(p),
            "significant": bool(p < inf.alpha),
        }
        for e, p in zip(effects, adjusted, strict=True)
    ]
    return records, x, y, names


def ensemble_sizes(n: int) -> list[int]:
    """The ensemble sizes shown for up to n members: 1, 2, 4, ... below n."""
    return [2**i for i in range(max(n - 1, 1).bit_length()) if 2**i < max(n, 2)]


def record_sizes(record: dict[str, Any]) -> list[int]:
    """The ensemble sizes an ensemble record has a column for (its `ens<m>_acc` keys)."""
    return [int(k[3:-4]) for k in record if k.startswith("ens") and k.endswith("_acc")]


Outputs = list[tuple[np.ndarray, np.ndarray | None]]  # per run: log_probs, mc_log_probs or None


def _usable_outputs(
    r: Run, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """One run's (labels, log_probs, MC dropout's or None), or None with a note why not usable."""
    out = read_test_outputs(r)
    if isinstance(out, str):
        notes.append(f"{r.path}: {out}; left out of the ensembles")
        return None
    labels, lp, mc = out
    if (n := test_size(r)) is not None and len(labels) != n:
        notes.append(
            f"{r.path}: {TEST_OUTPUTS} holds {len(labels)} test outputs, its test "
            f"split has {n}; left out of the ensembles"
        )
        return None
    if mc is not None and mc.shape != lp.shape:
        notes.append(
            f"{r.path}: mc_log_probs' shape {mc.shape} is not log_probs' {lp.shape}; "
            "left out of MC dropout"
        )
        mc = None
    return labels, lp, mc


def _outputs(g: Group, notes: list[str]) -> tuple[np.ndarray | None, Outputs]:
    """The test labels and, per usable run of the group in seed order, its stored log-softmax
    outputs (and MC dropout's, if any). Left out, with a note: runs whose outputs are unusable
    (_usable_outputs) or on other labels or classes than most of the group's runs hold."""
    runs = sorted((r for r in g.runs if r.usable), key=lambda r: (r.seed is None, r.seed or 0))
    read = [(r, out) for r in runs if (out := _usable_outputs(r, notes)) is not None]
    if not read:
        return None, []

    def test_set(out: tuple[np.ndarray, np.ndarray, np.ndarray | None]) -> tuple[Any, bytes]:
        return out[1].shape, out[0].tobytes()

    # the test set most runs share (ties: the first seed's): a single damaged file must not
    # decide the group's test set and push the valid runs out
    counts = Counter(test_set(out) for _, out in read)
    shared = max(counts, key=counts.__getitem__)  # max keeps the first of equals: seed order
    for r, (_, lp, _) in ((r, out) for r, out in read if test_set(out) != shared):
        why = "labels differ from" if lp.shape == shared[0] else f"log_probs are {lp.shape}, not"
        notes.append(
            f"{r.path}: its test {why} those of {counts[shared]} of the group's "
            f"{len(read)} runs {shared[0]}; left out of the ensembles"
        )
    kept = [out for _, out in read if test_set(out) == shared]
    return kept[0][0], [(lp, mc) for _, lp, mc in kept]


def _ensemble(labels: np.ndarray, out: Outputs, sizes: list[int], inf: Inference) -> dict[str, Any]:
    """One group's ensemble numbers (see ensemble_records)."""
    lp = np.stack([o[0] for o in out])  # (members, n, classes)
    below = [m for m in sizes if m < len(out)]
    *curve, (all_acc, all_nll, _) = stats.ensemble_curve(lp, labels, [*below, len(out)])
    gain = stats.ensemble_gain(lp, labels, inf.level)
    r: dict[str, Any] = {f"ens{m}_acc": acc for m, (acc, _, _) in zip(below, curve, strict=True)}
    r |= {"all_acc": all_acc, "gain": gain.diff, "gain_low": gain.low, "gain_high": gain.high}
    r |= {"gain_p": gain.p, "single_nll": curve[0][1] if curve else all_nll, "all_nll": all_nll}
    mc = [(usual, sampled) for usual, sampled in out if sampled is not None]
    if mc:
        usual_acc = stats.correct(np.stack([u for u, _ in mc]), labels).mean(-1)  # (runs,)
        mc_acc = stats.correct(np.stack([m for _, m in mc]), labels).mean(-1)
        c = stats.paired(mc_acc, usual_acc, "t", inf.level, inf.reps, inf.seed)
        r |= {"mc_runs": len(mc), "mc_usual_acc": float(usual_acc.mean())}
        r |= {"mc_acc": float(mc_acc.mean()), "mc_delta": c.diff}
        r |= {"mc_low": c.low, "mc_high": c.high, "mc_p": c.p}
    return r


def ensemble_records(
    groups: Sequence[Group], inf: Inference
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per group, from its runs' stored test outputs (ensemble: the members' softmax averaged):
    accuracy of single runs (ens1) and of the disjoint ensembles of 2, 4, ... seeds in seed order,
    the ensemble of all with its gain over a single run (t interval over test examples) and NLLs;
    MC dropout against the same runs' usual (weight-scaled) evaluation, paired by run.
    Also notes on the runs left out."""
    notes: list[str] = []
    outputs = [_outputs(g, notes) for g in groups]
    sizes = ensemble_sizes(max(len(out) for _, out in outputs))
    records = []
    for g, (labels, out) in zip(groups, outputs, strict=True):
        r: dict[str, Any] = {
            **g.labels,
            "members": len(out),
            **{f"ens{m}_acc": None for m in sizes},
        }
        r |= {"all_acc": None, "gain": None}
        records.append(r | (_ensemble(labels, out, sizes, inf) if labels is not None else {}))
    return records, notes


def sort_order(records: Sequence[dict[str, Any]], sort: str | None, metric: str) -> list[int]:
    """Indices of records in display order. Default: metric, best first; `-key` descends."""
    if sort is None:
        sort = f"{metric}" if metric in LOWER_IS_BETTER else f"-{metric}"
    key = sort.lstrip("-")
    key = f"{metric}_mean" if key == metric else key
    if records and key not in records[0]:
        raise CompareError(f"cannot sort by {key!r}; choose one of: {', '.join(records[0])}")

    def sort_key(i: int) -> tuple[bool, Any]:
        v = records[i][key]
        return (v is None, v if isinstance(v, (int, float)) else str(v))

    order = sorted(range(len(records)), key=sort_key)
    if sort.startswith("-"):  # reverse values, but keep missing values last
        present = [i for i in order if records[i][key] is not None]
        order = present[::-1] + [i for i in order if records[i][key] is None]
    return order
