"""Claims whose effect is not one arm minus another (regbench.contrast): two metrics of the same runs
(versus), an interaction (across) and a group of seeds' ensemble (group). Their scores against
hand-computed cases; their schema's one-line errors; three tiny claims end to end, each ledger
number equal to what `regbench compare` prints for its folder and to the runs' own numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from regbench import folder
from regbench.claims import catalogue
from regbench.contrast import Term, ensemble_accuracy, scores, two_arms, unit_values
from regbench.record import Summary
from tests.conftest import cli
from tests.test_claims import TINY, bad_claim_error, user_folder

BASE = {k: v for k, v in TINY.items() if k not in ("arms", "baseline", "curves")}
# the best checkpoint against the last of the same runs (6 epochs: the last is not always the best)
VERSUS = BASE | {
    "setup": ["trainer.epochs=6", "data.subset=150", "trainer.test_checkpoints=true"],
    "arms": [["reg=none"]],
    "metric": "test_acc_best",
    "versus": "test_acc_last",
    "direction": "higher",
    "question": {"delta": 0.01, "stage": 3, "budget": 3},
}
# a group of 2 seeds' ensemble against its members
ENSEMBLE = VERSUS | {
    "setup": ["trainer.epochs=2", "data.subset=150"],
    "metric": "ensemble_test_acc",
    "versus": "test_acc",
    "group": 2,
}
# (dropout − none at 100 images) − (dropout − none at 200)
ACROSS = BASE | {
    "setup": ["trainer.epochs=2"],
    "arms": "reg=none,dropout",
    "baseline": "reg=none",
    "across": "data.subset=100,200",
    "direction": "higher",
    "question": {"delta": 0.01, "stage": 3, "budget": 3},
}


def test_scores_are_the_signed_sums_of_each_units_measurements() -> None:
    got = {("a", "m"): np.array([0.9, 0.8]), ("b", "m"): np.array([0.7, 0.85]),
           ("a", "k"): np.array([0.5, 0.6]), ("a x", "m"): np.array([0.95, 0.9]),
           ("b x", "m"): np.array([0.9, 0.8])}  # fmt: skip
    assert np.allclose(scores(two_arms("a", "b", "m"), got), [0.2, -0.05])
    assert np.allclose(scores((Term(1, "a", "m"), Term(-1, "a", "k")), got), [0.4, 0.2])
    inter = (*two_arms("a", "b", "m"), Term(-1, "a x", "m"), Term(1, "b x", "m"))
    assert np.allclose(scores(inter, got), [0.2 - 0.05, -0.05 - 0.1])


def test_censored_times_of_two_measurements_score_by_sign() -> None:
    got = {("a", "epochs_to_target"): np.array([3, math.inf, math.inf]),
           ("b", "epochs_to_target"): np.array([5, 2, math.inf])}  # fmt: skip
    assert scores(two_arms("a", "b", "epochs_to_target"), got).tolist() == [-1.0, 1.0, 0.0]


def _run(root: Path, seed: int, acc: float, log_probs: np.ndarray, labels: np.ndarray) -> dict:
    run = root / f"s{seed}"
    run.mkdir(parents=True)
    folder.write_summary(run, Summary(status="completed", run_name=run.name, test_acc=acc,
                                      epochs_run=1, seed=seed))  # fmt: skip
    folder.write_test_outputs(run, labels, {"log_probs": log_probs})
    return {"dir": str(run), "overrides": ["reg=none", f"seed={seed}"]}


def test_a_groups_mean_and_its_ensembles_accuracy_by_hand(tmp_path: Path) -> None:
    labels = np.array([0, 1, 1])
    # member 0 right on 0 and 1 (2/3); member 1 right on 1 and 2 (2/3); on example 0 member 0
    # is surer (0.9 on class 0) than member 1 is wrong (0.6 on class 1): the mean (0.65, 0.35)
    # is right; on example 2 member 0 says 0 at 0.55, member 1 says 1 at 0.9: the mean is right
    p0 = np.array([[0.9, 0.1], [0.2, 0.8], [0.55, 0.45]])
    p1 = np.array([[0.4, 0.6], [0.3, 0.7], [0.1, 0.9]])
    p2 = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])  # right on example 0 only
    runs = [_run(tmp_path, s, a, np.log(p), labels) for s, (a, p) in enumerate([(2 / 3, p0), (2 / 3, p1), (1 / 3, p2), (1 / 3, p2)])]  # fmt: skip
    assert ensemble_accuracy([tmp_path / "s0", tmp_path / "s1"]) == 1.0
    assert ensemble_accuracy([tmp_path / "s2", tmp_path / "s3"]) == pytest.approx(1 / 3)
    assert np.allclose(unit_values(runs, "reg=none", 2, "ensemble_test_acc", 2), [1.0, 1 / 3])
    assert np.allclose(unit_values(runs, "reg=none", 2, "test_acc", 2), [2 / 3, 1 / 3])
    assert np.allclose(unit_values(runs, "reg=none", 4, "test_acc", 1), [2 / 3, 2 / 3, 1 / 3, 1 / 3])  # fmt: skip


@pytest.mark.parametrize(
    ("claim", "says"),
    [
        (VERSUS | {"baseline": "reg=none"}, "versus compares two metrics of the same runs"),
        (VERSUS | {"versus": "test_acc_best"}, "is the metric itself"),
        (VERSUS | {"versus": "test_loss"}, "is not measured as 'test_acc_best' is"),
        (VERSUS | {"versus": "test_accuracy"}, "unknown versus 'test_accuracy'"),
        (VERSUS | {"metric": "ensemble_test_acc", "versus": "test_acc"}, "needs group >= 2"),
        (TINY | {"group": 2, "metric": "diverged"}, "is no outcome"),
        (ACROSS | {"across": "data.subset=100,200,300"}, "two values"),
        (ACROSS | {"across": "reg=l2,none"}, "reg is set by an arm"),
        (ACROSS | {"metric": "diverged"}, "no difference of differences"),
        (ACROSS | {"baseline": None}, "baseline: key=value"),
    ],
)
def test_a_bad_contrast_is_one_line_before_any_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claim: dict, says: str
) -> None:
    assert says in bad_claim_error(tmp_path, monkeypatch, claim)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("contrasts")
    conf = user_folder(root / "conf", versus=VERSUS, ensemble=ENSEMBLE, across=ACROSS)
    out = root / "out"
    done = cli("--config-dir", str(conf), "claims", "run", "versus", "ensemble", "across", "--out-dir", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {r["claim"]: r for r in json.loads((out / "ledger.json").read_text())["claims"]}
    return out, rows


def _delta(row: dict) -> float:
    return float(row["effect"].split(": ")[-1].split(" ")[0])


def _by(out: Path, name: str, metric: str, *want: str) -> list[float]:
    runs = json.loads((out / "sweeps" / f"claim-{name}" / "sweep.json").read_text())["runs"]
    found = {r["overrides"][-1]: folder.read_summary(Path(r["dir"])) for r in runs
             if set(want) <= set(r["overrides"])}  # fmt: skip
    return [found[f"seed={s}"][metric] for s in range(len(found))]


def test_the_ledgers_numbers_are_the_runs_and_what_compare_prints(ledger) -> None:
    out, rows = ledger
    assert rows["versus"]["runs"] == 3 and rows["ensemble"]["runs"] == 6 and rows["across"]["runs"] == 12  # fmt: skip
    assert rows["ensemble"]["seeds"] == 6 and rows["ensemble"]["fixed_runs"] == 6
    best, last = _by(out, "versus", "test_acc_best"), _by(out, "versus", "test_acc_last")
    assert _delta(rows["versus"]) == pytest.approx(np.mean(np.subtract(best, last)), abs=5e-5)
    acc = {(r, n): np.array(_by(out, "across", "test_acc", f"reg={r}", f"data.subset={n}"))
           for r in ("none", "dropout") for n in (100, 200)}  # fmt: skip
    inter = (acc["dropout", 100] - acc["none", 100]) - (acc["dropout", 200] - acc["none", 200])
    assert _delta(rows["across"]) == pytest.approx(inter.mean(), abs=5e-5)
    for name, row in rows.items():  # the staged section compare prints: the same Δ [interval]
        shown = cli("compare", str(out / "sweeps" / f"claim-{name}"), "--format", "md")
        assert shown.returncode == 0, shown.stderr
        interval, verdict = row["effect"].rsplit(": ", 1)[1].rsplit(" (", 1)
        line = next(x for x in shown.stdout.splitlines() if f"| {interval} |" in x)
        assert f"| {verdict.rstrip(')')} |" in line, (line, row)


def test_the_ensemble_claim_is_compare_ensembles_gain(ledger) -> None:
    out, rows = ledger  # groups of 2 consecutive seeds: compare --ensemble's 2-seed ensembles
    shown = cli("compare", str(out / "sweeps" / "claim-ensemble"), "--ensemble", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    ens = json.loads(shown.stdout)["ensembles"][0]
    assert _delta(rows["ensemble"]) == pytest.approx(ens["ens2_acc"] - ens["ens1_acc"], abs=5e-5)


def test_every_contrast_claim_in_the_catalogue_names_its_measurements() -> None:
    for name, c in catalogue.load().items():
        if c.versus or c.across or c.group > 1:
            assert c.terms or c.group > 1, name
            assert len(c.comparisons) >= 1 and c.why, name


def test_the_readmes_ledger_rows_are_copied_from_the_generated_ledger() -> None:
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("readme_ledger", root / "docs" / "readme_ledger.py")  # fmt: skip
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    readme = (root / "README.md").read_text()
    shown = readme[readme.index(mod.BEGIN) : readme.index(mod.END) + len(mod.END)]
    names = [line.split("**")[1] for line in shown.splitlines() if line.startswith("| **")]
    assert len(names) == 3
    assert shown == mod.block(json.loads((root / "docs" / "decks.json").read_text()), names)
