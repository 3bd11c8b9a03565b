"""Statistical power per CPU-minute from common random numbers: paired vs unpaired intervals.

Runs (or re-reads) a digits sweep of `reg=none` and each regularizer over the same seeds, then
prints, per regularizer: the within-pair correlation rho of test accuracy with the `none` run of
the same seed, the 95 % CI width of the mean difference paired by seed (paired t) and unpaired
(Welch), their ratio, and ratio^2: roughly how many times more seeds the unpaired design needs for
the same interval width.

    python benchmarks/pairing.py                      # 10 seeds x none,l2,dropout,aug,wd; 15 epochs
    python benchmarks/pairing.py --seeds 5 --regs l2,dropout --epochs 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from scipy import stats


def sweep(out: Path, regs: list[str], seeds: int, epochs: int) -> Path:
    name = f"pairing-{'_'.join(regs)}-{seeds}x{epochs}"
    cmd = [
        sys.executable, "-m", "regbench", "sweep", "model=mlp", f"reg=none,{','.join(regs)}",
        f"seed={','.join(map(str, range(seeds)))}", f"trainer.epochs={epochs}",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"out_dir={out}", f"sweep_name={name}",
        "trainer.progress=none",
    ]  # fmt: skip
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out / "sweeps" / name


def test_acc_by_reg_and_seed(folder: Path) -> dict[str, dict[int, float]]:
    table: dict[str, dict[int, float]] = {}
    for cfg_path in folder.glob("*/config.yaml"):
        s = json.loads((cfg_path.parent / "summary.json").read_text())
        if s.get("test_acc") is None:
            continue
        cfg = yaml.safe_load(cfg_path.read_text())
        table.setdefault("+".join(cfg["reg"]), {})[cfg["seed"]] = s["test_acc"]
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--regs", default="l2,dropout,aug,wd")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--out", type=Path, default=Path("outputs"))
    args = ap.parse_args()
    regs = args.regs.split(",")
    table = test_acc_by_reg_and_seed(sweep(args.out, regs, args.seeds, args.epochs))
    base = table["none"]
    print(f"{'reg':<10}{'n':>3}{'rho':>7}{'mean diff':>11}{'paired CI':>11}{'Welch CI':>10}"
          f"{'ratio':>7}{'seeds x':>9}")  # fmt: skip
    for reg in regs:
        seeds = sorted(set(table.get(reg, {})) & set(base))
        a = np.array([table[reg][s] for s in seeds])
        b = np.array([base[s] for s in seeds])
        rho = stats.pearsonr(a, b).statistic
        paired = stats.ttest_rel(a, b).confidence_interval()
        welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval()
        w_p, w_w = paired.high - paired.low, welch.high - welch.low
        print(
            f"{reg:<10}{len(seeds):>3}{rho:>7.2f}{a.mean() - b.mean():>+11.4f}{w_p:>11.4f}"
            f"{w_w:>10.4f}{w_w / w_p:>7.2f}{(w_w / w_p) ** 2:>9.1f}"
        )


if __name__ == "__main__":
    main()
