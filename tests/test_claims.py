"""regbench claims: every claim file validates; a bad claim is one line and exit 2 before any
training; the censored and divergence outcomes against hand-computed cases; two tiny claims end to
end (the ledger's verdict and interval are those compare prints for the claim's folder, a rerun
redoes nothing, the HTML renders in headless Chromium)."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from regbench import folder
from regbench.claims import catalogue, runner
from regbench.stats import censored
from regbench.stats.censored import paired_signs
from tests.conftest import assert_one_line_error, cli, cli_cmd, cli_env, cli_inprocess
from tests.test_html_browser import CHROMIUM, chromium, console_errors

TINY = {
    "deck": "lobel-maquinaria-de-deep-learning",
    "slide": "Inicialización de parámetros",
    "sentence": "¿Sirve inicializar todo con 0s?",
    "claim": "A net of zeros stays at chance.",
    "why": "the test's",
    "setup": ["trainer.epochs=2", "data.subset=200"],
    "full": [],
    "arms": "init=he_normal,zeros",
    "baseline": "init=he_normal",
    "metric": "test_acc",
    "direction": "lower",
    "question": {"delta": 0.01, "stage": 3, "budget": 3},
    "curves": True,
}
# a claim about divergence: N(0, 1) in a deep relu net diverges in its first epoch
DIVERGES = TINY | {
    "claim": "N(0, 1) diverges.",
    "setup": [
        "trainer.epochs=2",
        "data.subset=200",
        "optim=sgd",
        "model.hidden=[256,256,256,256,256]",
    ],  # fmt: skip
    "arms": "init=he_normal,normal_1",
    "metric": "diverged",
    "direction": "higher",
    # every pair alike: the exact sign test decides at 6 seeds or more (0.5^6 < its level)
    "question": {"delta": 0.2, "stage": 10, "budget": 10},
    "curves": False,
}


def user_folder(root: Path, **claims: dict) -> Path:
    (root / "claims").mkdir(parents=True, exist_ok=True)
    for name, c in claims.items():
        (root / "claims" / f"{name}.yaml").write_text(yaml.safe_dump(c, allow_unicode=True))
    return root


def test_every_claim_file_validates_and_names_its_deck() -> None:
    claims = catalogue.load()
    assert len(claims) >= 24
    for name, c in claims.items():
        assert c.deck in catalogue.DECKS and c.sentence and c.why, name
        if c.versus is None:  # arms against a baseline arm
            assert len(c.arm_cells) >= 2 and sum(c.baseline in cell for cell in c.arm_cells) == 1, name  # fmt: skip
        else:  # two metrics of the same runs
            assert c.baseline is None and len(c.arm_cells) >= 1, name


def test_listing_names_every_claim_and_its_deck(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = cli_inprocess("claims", monkeypatch=monkeypatch)
    assert code == 0
    for name, c in catalogue.load().items():
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert c.deck.split("-")[0] in line
    assert "claims; regbench claims run" in out.splitlines()[-1]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"metric": None}, "missing field 'metric'"),
        ({"metric": "test_accuracy"}, "unknown metric 'test_accuracy'"),
        ({"direction": "up"}, "direction 'up'; choose higher, lower or equivalent"),
        ({"colour": "red"}, "unknown key 'colour'"),
        (
            {"baseline": "init=glorot_uniform"},
            "baseline 'init=glorot_uniform' must be an override of exactly one arm",
        ),  # fmt: skip
        ({"setup": ["model.hidden=oops"]}, "claim bad: arm init=he_normal"),
    ],
)
def test_a_bad_claim_is_one_line_before_any_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict, says: str
) -> None:
    assert says in bad_claim_error(tmp_path, monkeypatch, TINY | change)


def bad_claim_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claim: dict) -> str:
    """`claims run` on a user's claim file `bad` (keys set to None left out): its one error line,
    checked to be one line and to leave the out folder unwritten."""
    conf = user_folder(tmp_path / "conf", bad={k: v for k, v in claim.items() if v is not None})
    out = tmp_path / "out"
    code, stdout, stderr = cli_inprocess(
        "--config-dir", str(conf), "claims", "run", "bad", "--out-dir", str(out), monkeypatch=monkeypatch
    )  # fmt: skip
    line = assert_one_line_error(code, stdout, stderr)
    assert not out.exists()  # nothing trained, nothing written
    return line


def test_an_unknown_claim_name_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, stdout, stderr = cli_inprocess(
        "claims", "run", "bn_speeds_trainin", "--out-dir", str(tmp_path / "o"), monkeypatch=monkeypatch
    )  # fmt: skip
    assert "unknown claim 'bn_speeds_trainin'" in assert_one_line_error(code, stdout, stderr)
    assert not (tmp_path / "o").exists()


def test_censored_times_score_by_sign_with_never_tied_at_the_worst_rank() -> None:
    inf = math.inf
    # seed by seed: arm first (-1), arm never (+1), baseline never (-1), both never (0), a tie (0)
    arm, base = [3, inf, 5, inf, 2], [4, 6, inf, inf, 2]
    assert paired_signs(arm, base).tolist() == [-1.0, 1.0, -1.0, 0.0, 0.0]
    # what stands in for "never" cannot change a score: any time beyond the run's end gives the same
    assert paired_signs([3, 99, 5, 99, 2], [4, 6, 99, 99, 2]).tolist() == [-1.0, 1.0, -1.0, 0.0, 0.0]  # fmt: skip
    with pytest.raises(ValueError, match="NaN"):
        paired_signs([np.nan], [1.0])


def test_all_pairs_alike_is_the_exact_sign_tests_to_decide() -> None:
    # 5 pairs alike: P = 1/32 = 0.031 under no effect; 10 pairs: 1/1024 = 0.00098
    assert censored.unanimous(np.ones(5), bound=1.5) == 1  # one-sided level 0.067
    assert censored.unanimous(np.ones(5), bound=2.5) == 0  # level 0.0062: not yet
    assert censored.unanimous(-np.ones(10), bound=2.5) == -1
    assert censored.unanimous([1, 1, 0, 1, 1, 1, 1, 1, 1, 1], bound=0.1) == 0  # a tie: the t test's


def test_summary_outcomes_censored_and_diverged() -> None:
    done = {"status": "completed", "epochs_to_target": None, "test_acc": 0.9, "diverged": False}
    assert folder.outcome(done, "epochs_to_target") == math.inf  # never reached: censored
    assert folder.outcome(done | {"epochs_to_target": 4}, "epochs_to_target") == 4.0
    assert folder.outcome(done, "diverged") == 0.0
    gone = {"status": "diverged", "epochs_to_target": None, "test_acc": None, "diverged": True}
    assert folder.outcome(gone, "diverged") == 1.0  # a diverged run is a result ...
    assert folder.outcome(gone, "epochs_to_target") == math.inf
    assert folder.outcome(gone, "test_acc") is None  # ... but it has no test accuracy
    assert folder.outcome({"status": "running"}, "diverged") is None


@pytest.mark.parametrize(
    ("direction", "seen", "verdict"),
    [
        ("higher", ["higher", "higher"], runner.HOLDS),
        ("higher", ["higher", "lower"], runner.CONTRADICTED),
        ("higher", ["equivalent", "undecided"], runner.NO_EFFECT),
        ("higher", ["higher", "undecided"], runner.UNDECIDED),
        ("lower", ["lower"], runner.HOLDS),
        ("equivalent", ["equivalent", "equivalent"], runner.HOLDS),
        ("equivalent", ["equivalent", "higher"], runner.CONTRADICTED),
        ("equivalent", ["undecided"], runner.UNDECIDED),
        ("higher", ["higher", "diverged"], runner.UNDECIDED),  # a staged study's diverged arm
    ],
)
def test_a_claims_verdict_is_the_worst_of_its_comparisons(direction, seen, verdict) -> None:
    assert runner.claim_verdict(direction, seen) == verdict


def test_stats_verdicts_read_in_the_metrics_direction() -> None:
    assert runner.observed("better", lower_is_better=True) == "lower"  # fewer epochs
    assert runner.observed("worse", lower_is_better=False) == "lower"  # less accuracy
    assert runner.observed("equivalent", lower_is_better=False) == "equivalent"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("claims")
    conf = user_folder(root / "conf", tiny=TINY, diverges=DIVERGES)
    out = root / "out"
    done = cli("--config-dir", str(conf), "claims", "run", "tiny", "diverges", "--out-dir", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return conf, out, done.stdout


def test_two_tiny_claims_end_to_end(ledger: tuple[Path, Path, str]) -> None:
    _, out, stdout = ledger
    doc = json.loads((out / "ledger.json").read_text())
    rows = {r["claim"]: r for r in doc["claims"]}
    assert rows["tiny"]["verdict"] == runner.HOLDS  # zeros: chance; he_normal: trains
    assert rows["diverges"]["verdict"] == runner.HOLDS  # every N(0, 1) run diverged, no He run did
    assert rows["diverges"]["effect"].startswith("init=normal_1: +1.0000")
    assert rows["tiny"]["runs"] == 6 and rows["tiny"]["fixed_runs"] == 6
    assert rows["diverges"]["runs"] == 20
    md = (out / "ledger.md").read_text()
    assert "«¿Sirve inicializar todo con 0s?»" in md and "Error control is per claim" in md
    assert (out / "ledger_tiny.png").is_file()  # curves: true


def test_the_ledgers_verdict_and_interval_are_what_compare_prints(ledger) -> None:
    _, out, _ = ledger
    row = next(r for r in json.loads((out / "ledger.json").read_text())["claims"] if r["claim"] == "tiny")  # fmt: skip
    shown = cli("compare", str(out / "sweeps" / "claim-tiny"), "--format", "md")
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("| init=zeros |"))
    interval, verdict = row["effect"].split(": ", 1)[1].rsplit(" (", 1)
    assert f"| {verdict.rstrip(')')} |" in line and f"| {interval} |" in line, (line, row)


def test_a_rerun_redoes_nothing_and_gives_the_same_verdicts(ledger) -> None:
    conf, out, _ = ledger
    summaries = {p: p.stat().st_mtime_ns for p in (out / "sweeps").rglob("summary.json")}
    before = json.loads((out / "ledger.json").read_text())["claims"]
    again = cli("--config-dir", str(conf), "claims", "run", "tiny", "diverges", "--out-dir", str(out))  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert "epoch" not in again.stdout  # no run trained again
    assert {p: p.stat().st_mtime_ns for p in summaries} == summaries
    after = json.loads((out / "ledger.json").read_text())["claims"]
    assert [(r["verdict"], r["effect"], r["runs"]) for r in after] == [(r["verdict"], r["effect"], r["runs"]) for r in before]  # fmt: skip


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_the_html_ledger_renders_in_chromium(ledger, tmp_path: Path) -> None:
    _, out, _ = ledger
    done = chromium(out / "ledger.html", tmp_path, "--dump-dom")
    assert 'id="ledger"' in done.stdout and "¿Sirve inicializar todo con 0s?" in done.stdout
    assert done.stdout.count("<tr>") == 3 and "data:image/png;base64," in done.stdout
    assert not console_errors(done.stderr), console_errors(done.stderr)


def test_killed_anywhere_a_rerun_redoes_no_finished_run_and_agrees(ledger, tmp_path: Path) -> None:
    conf, uninterrupted, _ = ledger
    out = tmp_path / "out"
    args = ("--config-dir", str(conf), "claims", "run", "tiny", "diverges", "--out-dir", str(out))
    proc = subprocess.Popen(cli_cmd(*args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:  # killed once the first claim is decided, while the second trains
        while proc.poll() is None and not (out / "sweeps" / "claim-tiny" / runner.CLAIM_JSON).exists():  # fmt: skip
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the command ended before it could be killed"
    finished = {p: p.stat().st_mtime_ns for p in out.rglob("summary.json")
                if folder.read_summary(p.parent)["status"] in folder.FINAL}  # fmt: skip
    assert finished  # the first claim's runs
    again = cli(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # none trained again
    verdicts = [(r["claim"], r["verdict"], r["effect"]) for r in json.loads((out / "ledger.json").read_text())["claims"]]  # fmt: skip
    assert verdicts == [(r["claim"], r["verdict"], r["effect"]) for r in json.loads((uninterrupted / "ledger.json").read_text())["claims"]]  # fmt: skip


def test_the_ledger_is_written_again_from_the_results_running_nothing(
    ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf, out, _ = ledger
    again = tmp_path / "again.md"
    code, _, err = cli_inprocess(
        "--config-dir", str(conf), "claims", "ledger", "tiny", "diverges", "--out-dir", str(out),
        "--ledger", str(again), monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads(again.with_suffix(".json").read_text())["claims"]
    assert rows == json.loads((out / "ledger.json").read_text())["claims"]
    assert (tmp_path / "again_tiny.png").is_file() and again.with_suffix(".html").is_file()


def test_jobs_run_the_claims_in_processes_with_the_same_ledger(ledger, tmp_path: Path) -> None:
    conf, out, _ = ledger
    par = tmp_path / "out"
    done = cli("--config-dir", str(conf), "claims", "run", "tiny", "diverges", "--out-dir", str(par), "--jobs", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "== tiny: started" in done.stdout and (par / "claims-logs" / "tiny.log").is_file()
    row = lambda r: (r["claim"], r["verdict"], r["effect"], r["runs"])  # noqa: E731
    seq = [row(r) for r in json.loads((out / "ledger.json").read_text())["claims"]]
    assert [row(r) for r in json.loads((par / "ledger.json").read_text())["claims"]] == seq
