"""A sweep is composed and checked whole before its first run trains (issue 41, items 3 and 5):
one line per invalid combination, exit 2, nothing run; options that would be ignored are refused;
a study's question: block and its top-level keys are checked before any run."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench import sweep as sw
from regbench.config import ConfigError
from tests.conftest import assert_one_line_error, cli


def _nothing_written(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir()), list(out.rglob("*"))


def test_one_invalid_value_among_many_stops_the_sweep_before_training(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = cli("sweep", "reg=dropout", "reg.dropout.p=0.1,1.5,0.3,2", "seed=0,1,2", f"out_dir={out}")
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert lines == [  # each invalid combination once, not once per seed
        "error: reg.dropout.p=1.5: invalid value for 'reg.dropout.p' (1.5): input should be less than 1",
        "error: reg.dropout.p=2: invalid value for 'reg.dropout.p' (2): input should be less than 1",
    ]
    _nothing_written(out)


@pytest.mark.parametrize(
    ("grid", "says"),
    [
        (["seed=5,-1"], "seed=-1: invalid value for 'seed' (-1): input should be greater than"),
        (["seed=[1,1],[2,3]"], "seed=[1,1]: seed=[1, 1] names a seed twice"),
        (["reg=none,dropout", "reg.dropout.p=0.5"], "reg=none: unknown key 'reg.dropout.p'"),
        (["seed=range(0,0)"], "seed=range(0,0) sweeps no value: an empty grid runs nothing"),
    ],
)
def test_invalid_neighbours_are_one_line_each(grid: list[str], says: str, tmp_path: Path) -> None:
    r = cli("sweep", *grid, f"out_dir={tmp_path / 'out'}")
    assert says in assert_one_line_error(r.returncode, r.stdout, r.stderr)
    _nothing_written(tmp_path / "out")


def test_a_staged_sweep_checks_every_stage_before_the_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = cli("sweep", "reg=none,l2", "optim.lr=0.001,-1", "--until-decided", "--baseline",
            "reg=none", "--delta", "0.01", f"out_dir={out}")  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert sorted(r.stderr.splitlines()) == [
        f"error: reg={reg} optim.lr=-1: invalid value for 'optim.lr' (-1): input should be greater than 0"
        for reg in ("l2", "none")
    ]
    _nothing_written(out)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--baseline", "reg=none", "--delta", "0.01"], "--baseline, --delta only work with --until-decided; add it, or drop them"),
        (["--stage", "3"], "--stage only works with --until-decided; add it, or drop it"),
        (["--until-decided", "--baseline", "reg=none", "--delta", "0.01", "hydra/sweeper=optuna"],
         "hydra/sweeper=optuna picks runs itself"),
    ],
)  # fmt: skip
def test_options_that_would_be_ignored_are_refused(
    args: list[str], says: str, tmp_path: Path
) -> None:
    if "hydra/sweeper=optuna" in args:
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the optuna extra")
    r = cli("sweep", "reg=none,l2", *args, f"out_dir={tmp_path / 'out'}")
    assert says in assert_one_line_error(r.returncode, r.stdout, r.stderr)
    _nothing_written(tmp_path / "out")


def test_factors_without_factorial_is_refused(tmp_path: Path) -> None:
    r = cli("compare", str(tmp_path), "--factors", "l2,dropout")
    assert "add --factorial" in assert_one_line_error(r.returncode, r.stdout, r.stderr)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("stage: 2.7", "invalid value for 'question.stage' (2.7): input should be a valid integer"),
        ("budget: 5.9", "invalid value for 'question.budget' (5.9)"),
        ("stage: abc", "invalid value for 'question.stage' ('abc')"),
        ("metric: test_accc", "unknown metric 'test_accc'; choose from: test_acc,"),
        ("alpha: 1.5", "'question.alpha' (1.5): input should be less than 1"),
        ("power: true", "'question.power' (True)"),
        ("baseline: none", "baseline 'none': key=value naming the arm"),
        ("spending: linear", "input should be 'obf' or 'pocock'"),
    ],
)
def test_the_whole_question_block_is_checked_before_any_run(
    line: str, says: str, tmp_path: Path
) -> None:
    study = tmp_path / "conf" / "study"
    study.mkdir(parents=True)
    (study / "q.yaml").write_text(
        f"overrides:\n  reg: none,l2\nquestion:\n  baseline: reg=none\n  delta: 0.01\n  {line}\n"
    )
    for staged in (["--until-decided"], []):  # a plain sweep of the study checks it too
        r = cli("--config-dir", str(tmp_path / "conf"), "sweep", "study=q", *staged,
                f"out_dir={tmp_path / 'out'}")  # fmt: skip
        assert says in assert_one_line_error(r.returncode, r.stdout, r.stderr)
        _nothing_written(tmp_path / "out")


def test_an_unknown_top_level_key_of_a_study_is_refused(tmp_path: Path) -> None:
    study = tmp_path / "conf" / "study"
    study.mkdir(parents=True)
    (study / "q.yaml").write_text("overrides:\n  reg: none,l2\nquestoin:\n  delta: 0.01\n")
    r = cli("--config-dir", str(tmp_path / "conf"), "sweep", "study=q", f"out_dir={tmp_path}/o")
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert "unknown key 'questoin'; a study has sweep_name, overrides, question" in line


def test_a_large_grid_is_planned_once_per_config_and_says_its_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # 2 models x 5 regs x 200 seeds: 10 compositions, not 2,000
    composed = []
    real = sw.compose_overrides

    def counting(overrides: list[str], with_hydra: bool = False):  # noqa: ANN202
        composed.append(overrides)
        return real(overrides, with_hydra)

    sw.compose_overrides, saved = counting, real
    try:
        p = sw.plan(["model=mlp,cnn", "reg=none,l2,dropout,aug,wd", "seed=range(0,200)",
                     f"out_dir={tmp_path}"])  # fmt: skip
    finally:
        sw.compose_overrides = saved
    assert len(p.runs) == 2000 and len({r["name"] for r in p.runs}) == 2000
    assert len(composed) == 1 + 10  # the sweep folder's Hydra settings, then each config once
    assert "planning a grid of 2,000 jobs" in capsys.readouterr().err
    by_name = {r["name"]: r for r in p.runs}
    assert "seed=199" in by_name["cnn-wd-adam-s199"]["overrides"]


def test_a_fused_grid_names_each_seeds_folder() -> None:
    p = sw.plan(["reg=none,l2", "seed=0,1,2,3", "trainer.fuse=2", "out_dir=/nonexistent"])
    assert [r["name"] for r in p.runs][:4] == [f"mlp-none-adam-s{s}" for s in range(4)]
    with pytest.raises(ConfigError, match="names a seed twice"):
        sw.plan(["seed=[0,0]", "out_dir=/nonexistent"])


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["train", "data.root=/tmp/données", "--cfg"], "bad override 'data.root=/tmp/données': Hydra's syntax does not allow this value unquoted; quote it"),
        (["sweep", "name=café,b", "--dry-run"], "'name' ('café,b'): one plain folder name"),
        (["train", "--", "--bogus"], "--bogus is not an option of this command and not an override"),
        (["train", "justaword", "--cfg"], "bad override 'justaword': write key=value"),
        (["train", "=5", "--cfg"], "bad override '=5': write key=value"),
        (["train", "reg=[dropout", "--cfg"], "bad override 'reg=[dropout': a bracket, parenthesis or quote is left open"),
        (["train", "seed=range(0,3)", "--cfg"], "seed=range(0,3) sweeps several values: run them with `regbench sweep"),
    ],
)  # fmt: skip
def test_hydras_parser_errors_say_what_to_write(command: list[str], says: str) -> None:
    r = cli(*command)
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert says in line and "LexerNoViableAlt" not in line, line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "is a range to search, not values to list: add hydra/sweeper=optuna"),
        (["--until-decided", "--baseline", "reg=none"], "--until-decided compares arms"),
    ],
)
def test_an_interval_outside_a_search_is_one_line(
    args: list[str], says: str, tmp_path: Path
) -> None:
    r = cli("sweep", "reg=none,dropout", "optim.lr=interval(0.001,0.1)", *args,
            f"out_dir={tmp_path / 'out'}")  # fmt: skip
    assert says in assert_one_line_error(r.returncode, r.stdout, r.stderr)
    _nothing_written(tmp_path / "out")


def test_a_staged_sweep_names_every_arm_a_fixed_bad_value_breaks(tmp_path: Path) -> None:
    r = cli("sweep", "reg=none,dropout,l2", "optim.lr=-1", "--until-decided", "--baseline",
            "reg=none", f"out_dir={tmp_path / 'out'}")  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert [ln.split(":")[1].strip() for ln in r.stderr.splitlines()] == [
        "reg=none",
        "reg=dropout",
        "reg=l2",
    ]
    _nothing_written(tmp_path / "out")


@pytest.mark.parametrize("given", ["sweep_name=étude", 'sweep_name="étude"', "sweep_name=a b"])
def test_a_sweep_name_outside_the_rule_says_the_rule_not_quoting(
    given: str, tmp_path: Path
) -> None:
    r = cli("sweep", "seed=0,1", given, f"out_dir={tmp_path / 'out'}")
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert "one plain folder name of at most 200 ASCII letters" in line and "quote" not in line
