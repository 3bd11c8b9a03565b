"""Training throughput: regbench's loop against the bare step and the tutorial loop, fused seeds
against the same seeds one after another, and the start-up of an MNIST run before/after the cache.

    python benchmarks/throughput.py [--mnist-root ../shared/datasets] [--device cpu|cuda]

Every number that is compared is a ratio of two measurements taken in this one process, round
robin (a, b, a, b, ...), so a machine shared with other work affects both sides alike. The fused
rows keep each round's ratio (paired, order alternating) and print their median and range; the
other sections the median of each side. The load average is printed with the tables.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from regbench import data, models
from regbench.config import CONF_DIR
from regbench.naming import member_configs
from regbench.run import fuse, loop
from regbench.run.device import elapsed
from regbench.run.step import make_optimizer

REPO = Path(__file__).resolve().parent.parent
ROUNDS = 3
BARE_STEPS = 200


def cfg_of(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["trainer.progress=none", *overrides])


def rounds_of(fns: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each function once per round, the order rotating from round to round (a, b, c; b, c, a;
    ...), so no side always runs first or right after the same neighbour: {name: one per round}."""
    got: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            got[k].append(fns[k]())
    return got


def median_round_robin(fns: dict[str, Callable[[], float]]) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in rounds_of(fns, ROUNDS).items()}


def ratio_cell(ratios: list[float]) -> str:
    """The median of per-round ratios in bold, their range after it."""
    return f"**{statistics.median(ratios):.2f}×** ({min(ratios):.2f}-{max(ratios):.2f})"


# ---- 1. the loop against the bare step and the tutorial loop (samples/s) ------------------------
def regbench_loop(cfg: DictConfig, d: data.Splits) -> float:
    """samples/s of fit's training epochs (its own metrics.csv measure, evaluation excluded)."""
    with tempfile.TemporaryDirectory() as tmp:
        m = loop.Member(member_configs(cfg)[0], Path(tmp), lambda *lines: None)
        loop.fit([m], d)
        rows = (Path(tmp) / "metrics.csv").read_text().splitlines()
    return float(rows[-1].split(",")[-1])  # the last epoch: warmed up


def bare_step(
    cfg: DictConfig,
    d: data.Splits,
    steps: int,
    k: int = 1,
    gather: bool = False,
    default_optimizer: bool = False,
) -> float:
    """Seed-samples/s of the bare step: the model (k > 1: k members fused, as fit fuses them) and
    the optimizer fit gives it, on one ready batch per member: forward, loss, backward, step.
    gather: each step takes the next batch of a random order from the training split instead, as
    fit does (data.Splits.batch): the data path that no loop over shuffled batches can skip.
    default_optimizer: torch's default implementation of fit's optimizer instead of the fused one."""
    solos = [models.build(cfg, d.shape, d.num_classes) for _ in range(k)]
    model = (solos[0] if k == 1 else fuse.Fused(solos)).to(d.x_train.device).train()
    layout = torch.channels_last if cfg.trainer.channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    opt = make_optimizer(cfg.optim, model, wide=k > 1)
    if default_optimizer:  # the same class and settings, torch's choice of implementation
        groups = [g | {"fused": None, "foreach": None} for g in opt.param_groups]
        opt = type(opt)(groups, lr=groups[0]["lr"])
    bs, n = cfg.trainer.batch_size, len(d.x_train)
    x, y = d.x_train[:bs], d.y_train[:bs]
    if k > 1:
        x, y = model.widen(x), y.repeat(k)
    perms = torch.stack([torch.randperm(n, device=d.x_train.device) for _ in range(k)])
    for i in range(steps + 5):
        if i == 5:
            t0 = time.perf_counter()
        if gather:
            j = i % (n // bs)
            xk, yk = d.batch(perms[:, j * bs : (j + 1) * bs])
            x, y = xk.transpose(0, 1).flatten(1, 2), yk.flatten()
        out = model(x.contiguous(memory_format=layout)).reshape(-1, d.num_classes)  # member-major
        loss = F.cross_entropy(out, y, reduction="sum") / bs  # the sum of the members' mean losses
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return k * steps * bs / elapsed(t0, d.x_train.device)


def tutorial_loop(cfg: DictConfig, root: Path, n: int) -> float:
    """The PyTorch tutorial's way: torchvision dataset + ToTensor/Normalize + DataLoader."""
    import torchvision
    from torchvision import transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    ds = torchvision.datasets.MNIST(str(root), train=True, transform=tf)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(ds, range(n)), batch_size=cfg.trainer.batch_size, shuffle=True
    )
    model = models.build(cfg, (1, 28, 28), 10).train()
    opt = torch.optim.Adam(model.parameters(), cfg.optim.lr)
    t0 = time.perf_counter()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return n / (time.perf_counter() - t0)


def loop_table(root: Path | None, rounds: int) -> list[str]:
    """samples/s, median over the rounds; the ratios are per round (each round measures every
    side back to back), their median in bold and range after it."""
    out = ["| model (MNIST, CPU) | regbench loop | bare step | bare step + batch gather | tutorial loop | loop / bare | loop / (bare + gather) |"]  # fmt: skip
    out.append("| --- | --- | --- | --- | --- | --- | --- |")
    if root is None:
        return out + ["| (MNIST not found: not measured) | | | | | | |"]
    # about 1.5 s (mlp) and 4 s (cnn) per measurement: shorter ones swung by 0.8-1.4x here
    for model, n in (("mlp", 25600), ("cnn", 6400)):
        cfg = cfg_of(f"model={model}", "data=mnist", f"data.root={root}", f"data.subset={n}",
                     "trainer.epochs=2", "trainer.device=cpu")  # fmt: skip
        d = data.load(cfg.data, torch.device("cpu"))
        steps = n // cfg.trainer.batch_size
        got = rounds_of({
            "loop": partial(regbench_loop, cfg, d),
            "bare": partial(bare_step, cfg, d, steps),
            "gather": partial(bare_step, cfg, d, steps, gather=True),
            "tutorial": partial(tutorial_loop, cfg, root, n),
        }, rounds)  # fmt: skip
        r = {k: statistics.median(v) for k, v in got.items()}
        per_round = {
            side: [a / b for a, b in zip(got["loop"], got[side], strict=True)]
            for side in ("bare", "gather")
        }
        out.append(
            f"| {model} | {r['loop']:,.0f} | {r['bare']:,.0f} | {r['gather']:,.0f} | "
            f"{r['tutorial']:,.0f} | {ratio_cell(per_round['bare'])} | {ratio_cell(per_round['gather'])} |"
        )
    return out


# ---- 2. fused K seeds against the same K seeds one after another (seed-epochs/s) ---------------
def timed_fit(cfg: DictConfig, d: data.Splits, seeds: list[int]) -> tuple[list[float], float]:
    """fit() for these seeds as one job: (the first member's per-epoch training seconds from its
    metrics.csv; wall seconds of the whole fit, evaluation and checkpoint writes included)."""
    with tempfile.TemporaryDirectory() as tmp:
        members = []
        for s in seeds:
            c = member_configs(cfg)[0]
            c.seed = s
            (Path(tmp) / str(s)).mkdir()
            members.append(loop.Member(c, Path(tmp) / str(s), lambda *lines: None))
        t0 = time.perf_counter()
        loop.fit(members, d)
        wall = time.perf_counter() - t0
        lines = (Path(tmp) / str(seeds[0]) / "metrics.csv").read_text().splitlines()[1:]
        return [float(ln.split(",")[-2]) for ln in lines], wall


def fit_seconds(cfg: DictConfig, d: data.Splits, seeds: list[int]) -> tuple[float, float]:
    """(training seconds of all epochs, wall seconds) of these seeds as one job."""
    epochs, wall = timed_fit(cfg, d, seeds)
    return sum(epochs), wall


def solo_seconds(cfg: DictConfig, d: data.Splits, seeds: list[int]) -> tuple[float, float]:
    each = [fit_seconds(cfg, d, [s]) for s in seeds]
    return sum(t for t, _ in each), sum(w for _, w in each)


def one_side(cfg: DictConfig, d: data.Splits, k: int, fused: bool) -> tuple[float, float, float]:
    """K seeds fused or one after another: (training s, wall s, bare step seed-samples/s)."""
    seeds = list(range(k))
    if fused:
        return (*fit_seconds(cfg, d, seeds), bare_step(cfg, d, BARE_STEPS, k))
    return (*solo_seconds(cfg, d, seeds), bare_step(cfg, d, BARE_STEPS))


def fusion_rows(
    label: str, cfg: DictConfig, d: data.Splits, ks: list[int], rounds: int
) -> list[str]:
    """One row per K. Each round measures solo and fused back to back, in alternating order, and
    keeps their ratio: a drift of the machine's speed between rounds cancels in each ratio."""
    out, epochs = [], cfg.trainer.epochs
    for k in ks:
        got: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
        for r in range(rounds):
            for fused in (False, True) if r % 2 == 0 else (True, False):
                got[fused].append(one_side(cfg, d, k, fused))
        pairs = list(zip(got[False], got[True], strict=True))
        train = [s[0] / f[0] for s, f in pairs]
        wall = [s[1] / f[1] for s, f in pairs]
        bare = [f[2] / s[2] for s, f in pairs]
        (st, sw), (ft, fw) = (
            [statistics.median(x[i] for x in got[fused]) for i in (0, 1)] for fused in (False, True)
        )
        out.append(
            f"| {label} | {k} | {k * epochs / st:.1f} | {k * epochs / ft:.1f} | {ratio_cell(train)} "
            f"| {k * epochs / sw:.1f} | {k * epochs / fw:.1f} | {ratio_cell(wall)} | {ratio_cell(bare)} |"
        )
    return out


def fusion_table(root: Path | None, device: str, rounds: int, ks: list[int]) -> list[str]:
    out = ["| model, data, device | K | training: solo runs in a row | fused | fused / solo | wall: solo runs in a row | fused | fused / solo | bare step: fused / solo |"]  # fmt: skip
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    if device == "cpu":
        cfg = cfg_of("trainer.epochs=10", "trainer.device=cpu")  # the default mlp on digits
        out += fusion_rows("mlp, digits, CPU", cfg, data.load(cfg.data, torch.device("cpu")), ks, rounds)  # fmt: skip
        if root is not None:
            cfg = cfg_of("model=cnn", "data=mnist", f"data.root={root}", "data.subset=2000",
                         "trainer.epochs=2", "trainer.device=cpu")  # fmt: skip
            out += fusion_rows("cnn, MNIST (2k), CPU", cfg, data.load(cfg.data, torch.device("cpu")), [4], ROUNDS)  # fmt: skip
        return out
    if not torch.cuda.is_available():
        return out + [
            "| mlp and cnn, MNIST (10k), CUDA | 16 | not measured here (no GPU) | | | | | | |"
        ]
    if root is None:
        return out + ["| (MNIST not found: not measured) | | | | | | | | |"]
    for model in ("mlp", "cnn"):  # bf16 autocast: trainer.precision=auto on CUDA
        nhwc = "true" if model == "cnn" else "false"
        cfg = cfg_of(f"model={model}", "data=mnist", f"data.root={root}", "data.subset=10000",
                     "trainer.epochs=2", "trainer.device=cuda", "trainer.deterministic=false",
                     f"trainer.channels_last={nhwc}")  # fmt: skip
        d = data.load(cfg.data, torch.device("cuda"))
        out += fusion_rows(
            f"{model}, MNIST (10k), CUDA bf16{', NHWC' * (nhwc == 'true')}", cfg, d, [16], rounds
        )
    return out


# ---- 2b. torch.compile (trainer.compile=true) against eager --------------------------------------
def epoch_seconds(cfg: DictConfig, d: data.Splits, seeds: list[int]) -> tuple[float, float]:
    """(the last epoch's training seconds, wall seconds of the whole fit, compilation included)."""
    epochs, wall = timed_fit(cfg, d, seeds)
    return epochs[-1], wall


def compile_table(device: str) -> list[str]:
    out = ["| model, data, device | K | eager: epoch s | compiled: epoch s | compiled / eager speed | eager: wall s | compiled: wall s (compilation included) |"]  # fmt: skip
    out.append("| --- | --- | --- | --- | --- | --- | --- |")
    for k in (1, 8):
        cfg = cfg_of("trainer.epochs=5", f"trainer.device={device}")  # the default mlp on digits
        d = data.load(cfg.data, torch.device(device))
        got: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(ROUNDS):
            for compiled in (False, True):
                cfg.trainer.compile = compiled
                torch._dynamo.reset()  # each compiled fit pays its own compilation
                got[compiled].append(epoch_seconds(cfg, d, list(range(k))))
        (ee, ew), (ce, cw) = (
            [statistics.median(x[i] for x in got[c]) for i in (0, 1)] for c in (False, True)
        )
        out.append(f"| mlp, digits, {device} | {k} | {ee:.3f} | {ce:.3f} | **{ee / ce:.2f}×** | {ew:.1f} | {cw:.1f} |")  # fmt: skip
    return out


# ---- 2c. the fused (one-kernel) optimizer against torch's default, for a solo run ----------------
def optimizer_table(root: Path | None, rounds: int) -> list[str]:
    out = ["| model, data, optimizer (CPU, solo) | default: samples/s | fused: samples/s | fused / default |"]  # fmt: skip
    out.append("| --- | --- | --- | --- |")
    cases = [("mlp", "adam", []), ("mlp", "momentum", []), ("mlp", "adamw", [])]
    if root is not None:
        cases.append(("cnn", "adam", ["data=mnist", f"data.root={root}", "data.subset=2000"]))
    for model, optim, extra in cases:
        cfg = cfg_of(f"model={model}", f"optim={optim}", *extra, "trainer.device=cpu")
        d = data.load(cfg.data, torch.device("cpu"))
        steps = 300 if model == "mlp" else 30  # about 0.3 s and 1 s
        got = rounds_of({
            "default": partial(bare_step, cfg, d, steps, default_optimizer=True),
            "fused": partial(bare_step, cfg, d, steps),
        }, rounds)  # fmt: skip
        ratios = [f / dflt for dflt, f in zip(got["default"], got["fused"], strict=True)]
        label = f"{model}, {'digits' if not extra else 'MNIST (2k)'}, {optim}"
        out.append(
            f"| {label} | {statistics.median(got['default']):,.0f} | "
            f"{statistics.median(got['fused']):,.0f} | {ratio_cell(ratios)} |"
        )
    return out


# ---- 3. start-up of an MNIST run: decoding the archives vs the decoded cache ---------------------
def run_seconds(root: Path, out: Path) -> float:
    cmd = [sys.executable, "-m", "regbench", "train", "data=mnist", f"data.root={root}",
           "data.subset=640", "trainer.epochs=1", "model.hidden=[32]", "trainer.device=cpu",
           "trainer.progress=none", f"out_dir={out}"]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(
        cmd, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    return time.perf_counter() - t0


def startup_table(shared: Path | None) -> list[str]:
    out = ["| MNIST run, 1 epoch of 640 examples (wall s) | archives decoded (no cache) | decoded cache | ratio |"]  # fmt: skip
    out.append("| --- | --- | --- | --- |")
    if shared is None:
        return out + ["| (MNIST not found: not measured) | | | |"]
    cold, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        shutil.copytree(shared / "MNIST" / "raw", root / "MNIST" / "raw")
        env_cache = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")  # never the user's cache
        for i in range(ROUNDS):
            shutil.rmtree(root / ".regbench-cache", ignore_errors=True)
            shutil.rmtree(Path(tmp) / "cache", ignore_errors=True)
            cold.append(run_seconds(root, Path(tmp) / f"c{i}"))
            warm.append(run_seconds(root, Path(tmp) / f"w{i}"))
        if env_cache is None:
            os.environ.pop("XDG_CACHE_HOME")
        else:
            os.environ["XDG_CACHE_HOME"] = env_cache
    c, w = statistics.median(cold), statistics.median(warm)
    return out + [f"| mlp, CPU | {c:.2f} | {w:.2f} | {c / w:.2f}× faster |"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist-root", default=str(REPO.parent / "shared" / "datasets"))
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument(
        "--only", default="loop,fused,compile,optimizer,start-up", help="sections, comma-separated"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=7,
        help="rounds of the loop and optimizer sections and of the fused mlp (and CUDA) rows; the fused cnn: 3",
    )
    p.add_argument("--ks", default="1,2,4,8", help="K of the fused mlp rows on the CPU")
    args = p.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    shared = Path(args.mnist_root)
    root = None
    if (shared / "MNIST" / "raw").is_dir():  # a private copy: the cache is written beside it
        root = Path(tempfile.mkdtemp()) / "data"
        shutil.copytree(shared / "MNIST" / "raw", root / "MNIST" / "raw")
    print(f"# throughput, {time.strftime('%Y-%m-%d %H:%M %Z')}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads, load average {os.getloadavg()}")  # fmt: skip
    sections = [
        ("loop", lambda: loop_table(root, args.rounds)),
        ("fused", lambda: fusion_table(root, args.device, args.rounds, ks)),
        ("compile", lambda: compile_table(args.device)),
        ("optimizer", lambda: optimizer_table(root, args.rounds)),
        ("start-up", lambda: startup_table(root)),
    ]
    for title, table in sections:
        if title not in args.only.split(",") or (
            args.device == "cuda" and title in ("loop", "optimizer", "start-up")
        ):
            continue
        print(f"\n## {title}\n")
        print("\n".join(table()), flush=True)
    print(f"\nload average at the end {os.getloadavg()}")
    if root is not None:
        shutil.rmtree(root.parent)


if __name__ == "__main__":
    main()
