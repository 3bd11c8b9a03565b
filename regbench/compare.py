"""`regbench compare`: read run folders, group seeds, compute statistics, render a report.

Pipeline: discover_runs -> load_runs -> filter_runs -> group_runs -> group_records
(+ baseline deltas) -> one renderer (rich table, md, csv, json, html) and optionally
write_report (report, CSV files, PNG figures). Everything before rendering is pure.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Keys that never distinguish experiments: grouping on them would split seeds of one setting.
# trainer.progress only changes the display; `hydra` is defensive (per-job paths).
BOOKKEEPING = (
    "seed",
    "resume",
    "out_dir",
    "name",
    "sweep_name",
    "data.root",
    "data.download",
    "trainer.device",
    "trainer.progress",
    "hydra",
)
FINAL_OK = ("completed", "early_stopped")  # the only statuses averaged into statistics
STATUSES = ("running", "completed", "early_stopped", "diverged", "failed")
STATUS_ORDER = (*FINAL_OK, "diverged", "failed", "running", "incomplete", "corrupt")
METRICS = ("test_acc", "test_loss", "best_val_acc", "best_val_loss", "final_train_acc", "gen_gap")
LOWER_IS_BETTER = ("test_loss", "best_val_loss", "gen_gap")
CURVE_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc")
FORMATS = ("table", "md", "csv", "json", "html")
LEVEL = 0.95
SINGLE_GROUP_LABELS = ("data", "model", "reg", "optim")
MAX_PLOTTED_GROUPS = 12  # more lines than this make the curve figure unreadable


@dataclass
class Run:
    path: Path
    config: dict[str, Any] | None
    summary: dict[str, Any] | None
    metrics: dict[str, list[float]]
    status: str  # summary status, or "corrupt" / "incomplete"
    problem: str | None = None  # why the run is left out of the statistics (with a warning)

    @property
    def usable(self) -> bool:
        return self.problem is None and self.status in FINAL_OK

    def value(self, key: str) -> float | None:
        """A finite numeric summary field, else None (nulls, NaN of diverged runs)."""
        v = (self.summary or {}).get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return None
        return float(v)


@dataclass
class Group:
    labels: dict[str, str]  # display column -> label
    settings: dict[str, Any]  # what defines the group; baseline matching compares these
    runs: list[Run] = field(default_factory=list)

    def values(self, key: str) -> list[float]:
        return [v for r in self.runs if r.usable and (v := r.value(key)) is not None]


@dataclass
class Delta:
    """Difference of means (group - baseline) with a Welch t confidence interval."""

    diff: float
    low: float | None = None
    high: float | None = None
    df: float | None = None

    @property
    def significant(self) -> bool | None:
        if self.low is None or self.high is None:
            return None
        return self.low > 0 or self.high < 0


class CompareError(Exception):
    """A user-facing problem: printed as one `error:` line, exit code 2."""


# ---------------------------------------------------------------- discovery and loading


def discover_runs(paths: Sequence[Path]) -> list[Path]:
    """Every folder holding config.yaml at or below `paths` (not inside a run or hidden dir)."""
    found: dict[Path, None] = {}  # dict keeps order and drops overlaps between arguments
    for root in paths:
        if not root.is_dir():
            problem = "is not a folder" if root.exists() else "does not exist"
            raise CompareError(
                f"{root} {problem}; pass the folder `regbench train` wrote to (e.g. outputs/)"
            )
        for dirpath, dirnames, filenames in os.walk(root):
            if "config.yaml" in filenames:
                found[Path(dirpath).resolve()] = None
                dirnames[:] = []  # a run's own subfolders (e.g. .hydra/) are not runs
            else:
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return list(found)


def _read_metrics(path: Path) -> dict[str, list[float]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "epoch" not in rows[0]:
        raise ValueError("no header")
    header = rows[0]
    cols: dict[str, list[float]] = {name: [] for name in header}
    for row in rows[1:]:
        if len(row) != len(header):
            raise ValueError(f"row with {len(row)} fields, header has {len(header)}")
        for name, cell in zip(header, row, strict=True):
            cols[name].append(float(cell) if cell else math.nan)
    return cols


def load_run(path: Path) -> Run:
    """Read one run folder; never raises: unreadable files become a `problem`."""
    try:
        with (path / "config.yaml").open("rb") as f:
            config = yaml.load(f, Loader=yaml.CSafeLoader)  # ~20x faster than OmegaConf.load
        if not isinstance(config, dict):
            raise ValueError("not a mapping")
    except (OSError, ValueError, yaml.YAMLError) as e:
        return Run(path, None, None, {}, "corrupt", f"config.yaml unreadable ({_short(e)})")
    try:
        summary = json.loads((path / "summary.json").read_bytes())
    except FileNotFoundError:
        return Run(path, config, None, {}, "incomplete", "no summary.json (never finished)")
    except (OSError, ValueError) as e:
        return Run(path, config, None, {}, "corrupt", f"summary.json unreadable ({_short(e)})")
    status = summary.get("status") if isinstance(summary, dict) else None
    if status not in STATUSES:
        return Run(path, config, None, {}, "corrupt", f"summary.json has status {status!r}")
    if status == "running":  # killed runs stay "running" forever; either way, not final
        return Run(path, config, summary, {}, status, "still running (or killed)")
    try:
        metrics = _read_metrics(path / "metrics.csv")
    except FileNotFoundError:  # a run that failed before its first epoch: no curve, still counted
        metrics = {}
    except (OSError, ValueError) as e:
        return Run(path, config, summary, {}, "corrupt", f"metrics.csv unreadable ({_short(e)})")
    return Run(path, config, summary, metrics, status)


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:80] if str(e) else type(e).__name__


def load_runs(paths: Sequence[Path]) -> list[Run]:
    runs = [load_run(p) for p in discover_runs(paths)]
    if not runs:
        where = ", ".join(str(p) for p in paths)
        raise CompareError(
            f"no run folders (with config.yaml) under {where}; "
            "train with `regbench train` first or pass the folder it wrote to"
        )
    return runs


# ---------------------------------------------------------------- config keys and labels


def get_key(config: dict[str, Any] | None, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            flat.update(flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def label(key: str, value: Any) -> str:
    """Display label: a group's `name`, the regularizer set for `reg`, else the value."""
    if key == "reg" and isinstance(value, dict):
        return "+".join(value) or "none"
    if isinstance(value, dict):
        if "name" in value:
            return str(value["name"])
        return ",".join(f"{k}={v}" for k, v in value.items())
    return "-" if value is None else str(value)


def matches(key: str, value: Any, text: str) -> bool:
    """Compare a config value (or its label) with command-line text.

    Numbers compare as numbers (`1e-3` equals 0.001), booleans as true/false, `null` is None.
    """
    if value is None:
        return text in ("null", "None")
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    shown = label(key, value)
    if shown == text:
        return True
    try:
        return float(shown) == float(text)
    except ValueError:
        return False


def _is_bookkeeping(key: str) -> bool:
    return any(key == b or key.startswith(b + ".") for b in BOOKKEEPING)


def _under(key: str, prefix: str) -> bool:
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
    runs = [r for r in runs if r.config is not None]
    groups: dict[str, Group] = {}
    for run in runs:
        if by:
            settings = {k: label(k, get_key(run.config, k)) for k in by}
        else:
            settings = {k: v for k, v in flatten(run.config).items() if not _is_bookkeeping(k)}
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
    """
    values: dict[str, set[str]] = {}
    present: Counter[str] = Counter()
    for g in groups:
        for k, v in g.settings.items():
            values.setdefault(k, set()).add(json.dumps(v, sort_keys=True, default=str))
            present[k] += 1
    leaves = [k for k in values if len(values[k]) > 1]
    tops = {k.split(".")[0] for k in values if len(values[k]) > 1 or present[k] < len(groups)}
    return [t for t in dict.fromkeys(k.split(".")[0] for k in values) if t in tops], leaves


def _default_labels(group: Group, tops: Sequence[str], leaves: Sequence[str]) -> dict[str, str]:
    """One column per varying top-level key: its label plus its varying leaves.

    E.g. optim -> "adam lr=0.001" when the learning rate is swept, reg -> "dropout(p=0.5)+l2".
    """
    config = group.runs[0].config

    def params(prefix: str) -> list[str]:
        return [
            f"{k[len(prefix) :]}={group.settings[k]}"
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


# ---------------------------------------------------------------- statistics


def describe(values: Sequence[float]) -> tuple[int, float | None, float | None]:
    """(n, mean, sample std with ddof=1); std is None for fewer than 2 values."""
    n = len(values)
    mean = statistics.fmean(values) if n else None
    return n, mean, statistics.stdev(values) if n >= 2 else None


def _betacf(a: float, b: float, x: float) -> float:
    # Continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes 6.4).
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for aa in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast only on this side
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t (any real df > 0), by bisection of the monotone CDF."""
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return 0.5 * (lo + hi)


def welch_ci(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Delta:
    """mean(a) - mean(b) with Welch's t interval; no interval if either side has n < 2."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return Delta(diff)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0.0:  # identical seeds on both sides: the difference is exact
        return Delta(diff, diff, diff, float(len(a) + len(b) - 2))
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch–Satterthwaite
    half = t_quantile(0.5 + level / 2.0, df) * se
    return Delta(diff, diff - half, diff + half, df)


def baseline_deltas(
    groups: Sequence[Group], baseline: str, metric: str, by: Sequence[str] | None
) -> dict[int, Delta | str]:
    """Per group index: Delta to the baseline group with the same other settings, or a note."""
    key, value, negated = parse_assignment(baseline, "--baseline")
    if negated:
        raise CompareError("--baseline expects key=value, e.g. reg=none")
    if by and key not in by:
        raise CompareError(f"--baseline key {key!r} must be one of the --by keys ({','.join(by)})")

    def rest(g: Group) -> str:
        return json.dumps(
            {k: v for k, v in g.settings.items() if not _under(k, key)}, sort_keys=True, default=str
        )

    def is_base(g: Group) -> bool:
        return matches(key, g.settings[key] if by else get_key(g.runs[0].config, key), value)

    bases = {rest(g): g for g in groups if is_base(g)}
    if not bases:
        seen = sorted({label(key, get_key(g.runs[0].config, key)) for g in groups})
        raise CompareError(f"no group has {key}={value}; values present: {', '.join(seen)}")
    out: dict[int, Delta | str] = {}
    for i, g in enumerate(groups):
        base = bases.get(rest(g))
        a = g.values(metric)
        if base is None:
            out[i] = "no baseline"
        elif base is g:
            out[i] = "baseline"
        elif not a or not (b := base.values(metric)):
            out[i] = "no data"
        else:
            out[i] = welch_ci(a, b)
    return out


def group_records(
    groups: Sequence[Group], metric: str, deltas: dict[int, Delta | str] | None = None
) -> list[dict[str, Any]]:
    """One flat record of raw numbers per group (the data behind every output format)."""
    records = []
    for i, g in enumerate(groups):
        n, mean, std = describe(g.values(metric))
        params = sorted({int(v) for v in g.values("params")})
        rec: dict[str, Any] = {
            **g.labels,
            "n": n,
            f"{metric}_mean": mean,
            f"{metric}_std": std,
            "best_val_acc": describe(g.values("best_val_acc"))[1],
            "gen_gap": describe(g.values("gen_gap"))[1],
            "best_epoch": describe(g.values("best_epoch"))[1],
            "epochs_run": describe(g.values("epochs_run"))[1],
            "wall_seconds": describe(g.values("wall_seconds"))[1],
            "params": params[0] if len(params) == 1 else None,  # seeds never change the model
            "runs": len(g.runs),
            "statuses": _statuses(g.runs),
        }
        if deltas is not None:
            d = deltas[i]
            rec.update(
                delta=d.diff if isinstance(d, Delta) else None,
                delta_low=d.low if isinstance(d, Delta) else None,
                delta_high=d.high if isinstance(d, Delta) else None,
                delta_df=d.df if isinstance(d, Delta) else None,
                significant=d.significant if isinstance(d, Delta) else None,
                delta_note=d if isinstance(d, str) else ("n<2" if d.low is None else ""),
            )
        records.append(rec)
    return records


def _statuses(runs: Sequence[Run]) -> str:
    counts = Counter(r.status for r in runs)
    return ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if counts[s])


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


# ---------------------------------------------------------------- rendering


def _num(v: float | None, spec: str = ".4f") -> str:
    return "—" if v is None else format(v, spec)


def _signed(v: float | None) -> str:
    return _num(v, "+.4f")


def _duration(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(round(s), 60)
    return f"{m // 60}:{m % 60:02d}:{sec:02d}" if m >= 60 else f"{m}:{sec:02d}"


def _count(v: int | None) -> str:
    if v is None:
        return "—"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else str(v)


STAT_HEADERS = ("best val acc", "gen gap", "best ep/run", "wall", "params", "statuses")


def display_rows(
    records: Sequence[dict[str, Any]], label_cols: Sequence[str], metric: str
) -> tuple[list[str], list[list[str]]]:
    """Headers and text cells shared by the table, Markdown and HTML renderers."""
    with_delta = bool(records) and "delta" in records[0]
    headers = [*label_cols, "n", f"{metric} mean ± std", *STAT_HEADERS]
    if with_delta:
        headers.append("Δ vs baseline [95% CI]")
    rows = []
    for r in records:
        ep = f"{_num(r['best_epoch'], '.1f')}/{_num(r['epochs_run'], '.1f')}"
        std = f" ± {_num(r[f'{metric}_std'])}" if r[f"{metric}_std"] is not None else ""
        row = [
            *(r[c] for c in label_cols),
            str(r["n"]),
            _num(r[f"{metric}_mean"]) + std,
            _num(r["best_val_acc"]),
            _num(r["gen_gap"]),
            ep,
            _duration(r["wall_seconds"]),
            _count(r["params"]),
            r["statuses"],
        ]
        if with_delta:
            row.append(_delta_text(r))
        rows.append(row)
    return headers, rows


def _delta_text(r: dict[str, Any]) -> str:
    if r["delta"] is None:
        return r["delta_note"]
    if r["delta_low"] is None:
        return f"{_signed(r['delta'])} (n<2)"
    star = " *" if r["significant"] else ""
    return f"{_signed(r['delta'])} [{_signed(r['delta_low'])}, {_signed(r['delta_high'])}]{star}"


def render_rich(headers: list[str], rows: list[list[str]], n_labels: int, caption: str) -> Table:
    table = Table(
        title="regbench compare",
        caption=caption,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i < n_labels or h == "statuses" else "right")
    for row in rows:  # Text, not markup: labels like hidden=[256, 128] must print as they are
        table.add_row(*(Text(c, style="bold" if c.endswith(" *") else "") for c in row))
    return table


def render_markdown(headers: list[str], rows: list[list[str]]) -> str:
    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line("---" for _ in headers), *map(line, rows)]) + "\n"


def render_html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n" for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def render_csv(records: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in records for k in r))
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


def run_records(runs: Sequence[Run], groups: Sequence[Group]) -> list[dict[str, Any]]:
    """One record per run folder, skipped ones included with the reason."""
    group_of = {id(r): g for g in groups for r in g.runs}
    fields = (
        "run_name",
        "seed",
        "best_epoch",
        "epochs_run",
        "best_val_acc",
        "best_val_loss",
        "test_acc",
        "test_loss",
        "final_train_acc",
        "gen_gap",
        "wall_seconds",
        "params",
    )
    records = []
    for r in runs:
        g = group_of.get(id(r))
        records.append(
            {
                "path": _shown(r.path),
                **({"group": " / ".join(g.labels.values())} if g else {"group": ""}),
                "status": r.status,
                "skipped": r.problem or "",
                **{f: _finite((r.summary or {}).get(f)) for f in fields},
            }
        )
    return records


def _finite(v: Any) -> Any:
    """NaN/inf (diverged runs) -> None, so CSV and strict JSON stay valid."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _caption(skipped: int, with_delta: bool) -> str:
    # Not starting with "*": in report.md that would become a bullet.
    parts = ["Δ marked *: its 95% CI excludes 0 (Welch's t over seeds)"] if with_delta else []
    if skipped:
        parts.append(f"{skipped} run folder(s) skipped (see warnings)")
    parts.append("diverged/failed runs: counted, not averaged")
    return " · ".join(parts)


# ---------------------------------------------------------------- figures and report


def _curves(runs: Sequence[Run], column: str) -> tuple[Any, Any, Any]:
    """Epochs, mean and std of a metrics column across seeds (ragged lengths allowed)."""
    import numpy as np

    series = [r.metrics[column] for r in runs if r.metrics.get(column)]
    length = max(len(s) for s in series)
    grid = np.full((len(series), length), np.nan)
    for i, s in enumerate(series):
        grid[i, : len(s)] = s
    count = np.sum(~np.isnan(grid), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # an epoch with no value stays NaN
        mean = np.nansum(grid, axis=0) / count
    squares = np.nansum((grid - mean) ** 2, axis=0)
    std = np.sqrt(squares / np.maximum(count - 1, 1))  # sample std; 0 where one seed is left
    return np.arange(1, length + 1), mean, std


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _save(fig: Any, path: Path) -> None:
    # Margins are set by hand: tight_layout measures every text box (slow for 1,000 runs).
    fig.savefig(path, dpi=100, pil_kwargs={"compress_level": 3})


def write_figures(
    out: Path, groups: Sequence[Group], order: Sequence[int], metric: str
) -> list[str]:
    """Learning curves, metric bars and gap-vs-accuracy scatter as PNGs; returns file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_data = [groups[i] for i in order if groups[i].values(metric)]
    shown = with_data[:MAX_PLOTTED_GROUPS]
    names = [_clip(" / ".join(g.labels.values())) for g in shown]
    colors = [plt.get_cmap("tab10")(i % 10) for i in range(len(shown))]
    clipped = len(with_data) > len(shown)
    note = f" (first {len(shown)} of {len(with_data)} groups)" if clipped else ""
    files = []

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    for ax, column in zip(axes.flat, CURVE_COLUMNS, strict=True):
        for g, name, color in zip(shown, names, colors, strict=True):
            used = [r for r in g.runs if r.usable and r.metrics.get(column)]
            if not used:
                continue
            x, mean, std = _curves(used, column)
            ax.plot(x, mean, color=color, label=f"{name} (n={len(used)})")
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
            if best := describe(g.values("best_epoch"))[1]:
                ax.axvline(best, color=color, linestyle=":", linewidth=1)
        ax.set_title(column.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if column.endswith("loss") else "accuracy")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize="small", title="mean ± std over seeds; dotted: best epoch")
    fig.suptitle("Learning curves" + note)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.91, hspace=0.25)
    files.append("learning_curves.png")
    _save(fig, out / files[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.45 * len(shown)))
    stats = [describe(g.values(metric)) for g in shown]
    ax.barh(
        range(len(shown)),
        [m for _, m, _ in stats],
        xerr=[s or 0.0 for _, _, s in stats],
        color=colors,
        capsize=4,
    )
    ticks = [f"{name} (n={n})" for name, (n, _, _) in zip(names, stats, strict=True)]
    ax.set_yticks(range(len(shown)), ticks)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (mean ± sample std over seeds)")
    ax.set_title(f"{metric} by group" + note)
    height = fig.get_figheight()  # margins in inches: ~0.075 in per tick-label character
    fig.subplots_adjust(
        left=min(0.6, (0.4 + 0.075 * max(map(len, ticks), default=0)) / 8),
        right=0.97,
        bottom=0.8 / height,
        top=1 - 0.5 / height,
    )
    files.append(f"{metric}_bars.png")
    _save(fig, out / files[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 6))
    for g, name, color in zip(shown, names, colors, strict=True):
        pts = [(r.value("test_acc"), r.value("gen_gap")) for r in g.runs if r.usable]
        pts = [(x, y) for x, y in pts if x is not None and y is not None]
        if pts:
            ax.scatter(*zip(*pts, strict=True), color=color, alpha=0.5, s=20)
            ax.scatter(
                statistics.fmean(p[0] for p in pts),
                statistics.fmean(p[1] for p in pts),
                color=color,
                edgecolor="black",
                marker="D",
                s=60,
                label=name,
            )
    ax.set_xlabel("test accuracy")
    ax.set_ylabel("generalization gap (train − val acc at best epoch)")
    ax.set_title("Generalization gap vs test accuracy" + note)
    ax.grid(alpha=0.3)
    if shown:
        ax.legend(fontsize="small", title="dots: seeds, diamonds: group means")
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.09, top=0.93)
    files.append("gap_vs_test_acc.png")
    _save(fig, out / files[-1])
    plt.close(fig)
    return files


def write_report(
    out: Path,
    runs: Sequence[Run],
    groups: Sequence[Group],
    records: Sequence[dict[str, Any]],
    order: Sequence[int],
    metric: str,
    as_html: bool,
    caption: str,
) -> Path:
    """report.md (or report.html), runs.csv, groups.csv and the figures into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    ordered = [records[i] for i in order]
    (out / "groups.csv").write_text(render_csv(ordered))
    (out / "runs.csv").write_text(render_csv(run_records(runs, groups)))
    figures = write_figures(out, groups, order, metric)
    headers, rows = display_rows(ordered, list(groups[0].labels) if groups else [], metric)
    skipped = [r for r in runs if r.problem]
    if as_html:
        items = "".join(
            f"<li>{html.escape(_shown(r.path))}: {html.escape(r.problem or '')}</li>"
            for r in skipped
        )
        imgs = "".join(f'<p><img src="{f}" alt="{f}"></p>\n' for f in figures)
        text = (
            "<!doctype html>\n<html><head><meta charset='utf-8'><title>regbench compare</title>"
            "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
            "</style></head><body>\n<h1>regbench compare</h1>\n"
            f"{render_html_table(headers, rows)}<p>{html.escape(caption)}</p>\n"
            + (f"<h2>Skipped runs</h2><ul>{items}</ul>\n" if skipped else "")
            + f"<h2>Figures</h2>\n{imgs}</body></html>\n"
        )
        path = out / "report.html"
    else:
        text = "# regbench compare\n\n" + render_markdown(headers, rows) + f"\n{caption}\n"
        if skipped:
            text += "\n## Skipped runs\n\n" + "".join(
                f"- `{_shown(r.path)}`: {r.problem}\n" for r in skipped
            )
        text += "\n## Figures\n\n" + "".join(f"![{f}]({f})\n\n" for f in figures)
        path = out / "report.md"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- command


def compare_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Run folders, sweep folders or any parent of them (e.g. outputs/).",
            show_default=False,
        ),
    ],
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Comma-separated dotted config keys to group by, e.g. model,reg,optim.lr. "
            "Default: runs that differ only in seed.",
        ),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            help="Column to sort groups by, e.g. test_acc, gen_gap, model; prefix '-' "
            "for descending. Default: --metric, best first.",
        ),
    ] = None,
    filter: Annotated[
        list[str],
        typer.Option(
            "--filter",
            help="Keep runs with key=value (or key!=value), e.g. data.name=mnist. "
            "Repeatable; all must hold.",
        ),
    ] = [],  # noqa: B006 - Typer copies list defaults
    metric: Annotated[
        str,
        typer.Option(
            "--metric", help=f"Summary metric to average and compare: {', '.join(METRICS)}."
        ),
    ] = "test_acc",
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="key=value of the reference group, e.g. reg=none: every group shows "
            "its difference to the baseline with the same other settings, with a 95% Welch CI.",
        ),
    ] = None,
    format: Annotated[
        str, typer.Option("--format", help=f"Output on stdout: {'|'.join(FORMATS)}.")
    ] = "table",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Also write report.md (report.html with --format html), runs.csv, "
            "groups.csv and PNG figures into this folder.",
        ),
    ] = None,
) -> None:
    """Compare runs: group seeds, mean ± std per group, effect of each regularizer vs a baseline."""
    err = Console(stderr=True)
    try:
        if format not in FORMATS:
            raise CompareError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
        if metric not in METRICS:
            raise CompareError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
        keys = [k.strip() for k in by.split(",") if k.strip()] if by else None
        runs = load_runs(paths)
        for r in runs:
            if r.problem:
                err.print(
                    f"warning: skipped {_shown(r.path)}: {r.problem}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
        kept = filter_runs(runs, filter)
        if not kept:
            raise CompareError(
                f"no runs with a readable config match {' and '.join(filter)}"
                if filter
                else "no run folder has a readable config.yaml"
            )
        for k in keys or []:
            if all(get_key(r.config, k) is None for r in kept):
                raise CompareError(f"--by key {k!r} is not in any run's config.yaml")
        groups = group_runs(kept, keys)
        deltas = baseline_deltas(groups, baseline, metric, keys) if baseline else None
        records = group_records(groups, metric, deltas)
        order = sort_order(records, sort, metric)
    except CompareError as e:
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None

    ordered = [records[i] for i in order]
    caption = _caption(sum(r.problem is not None for r in runs), deltas is not None)
    headers, rows = display_rows(ordered, list(groups[0].labels), metric)
    if format == "table":
        # Piped output has no width: let the table take what it needs instead of 80 columns.
        console = Console() if sys.stdout.isatty() else Console(width=250)
        console.print(render_rich(headers, rows, len(groups[0].labels), caption))
    elif format == "md":
        sys.stdout.write(render_markdown(headers, rows) + f"\n{caption}\n")
    elif format == "html":
        sys.stdout.write(render_html_table(headers, rows))
    elif format == "csv":
        sys.stdout.write(render_csv(ordered))
    else:
        runs_json = run_records(runs, groups)
        sys.stdout.write(
            json.dumps(
                {"metric": metric, "groups": ordered, "runs": runs_json},
                indent=2,
                default=str,
                allow_nan=False,
            )
            + "\n"
        )
    if out is not None:
        try:
            report = write_report(
                out, runs, groups, records, order, metric, format == "html", caption
            )
        except OSError as e:
            err.print(
                f"error: cannot write the report to {out}: {e.strerror or e}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(code=2) from None
        err.print(f"wrote {report}", markup=False, highlight=False, soft_wrap=True)
