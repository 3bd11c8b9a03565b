"""What a new user still hit (issue 27), each through the real command line: one `error:` line and
exit 2 for bad input, nothing written; sweeps that resume after a move; rich markup that keeps
[a,b]; Hydra's own spellings; progress over a sweep and lines that fit 100 columns."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import (
    REPO,
    assert_one_line_error,
    cli,
    cli_cmd,
    cli_env,
    cli_inprocess,
    ctrl_c_works,
)

TINY = ["trainer.progress=none", "trainer.epochs=1", "data.subset=200", "model.hidden=[32]"]
EXAMPLE = REPO / "examples" / "regbench_conf"


# ---- bad input: one line, exit 2, nothing written -------------------------------------------
@pytest.mark.parametrize(
    "args, says",
    [
        (["train", "name=.."], "'name' ('..'): one plain folder name"),
        (["train", "name=."], "'name' ('.')"),
        (["train", "name=" + "a" * 260], "at most 200"),
        (["train", "data.split_seed=-1"], "'data.split_seed' (-1): input should be greater than"),
        (["train", "trainer.device=mps"], "trainer.device=mps but this torch has no MPS device"),
        (["train", "reg=dropout,l2"], "'reg=[dropout,l2]'"),
        (["train", "optim={}"], "optim={} sets nothing"),
        (["train", "reg={}"], "reg={} sets nothing"),
        (["train", "-m", "reg=none,l2"], "use regbench sweep"),
        (["sweep", "+foo=1", "--dry-run"], "unknown key 'foo'"),
        (["sweep", "reg=none,l2", "hydra.sweep.subdir=x"], "hydra.sweep.subdir is regbench's"),
        (["sweep", "reg=glob(zz*)", "--dry-run"], "matches no reg option"),
    ],
)
def test_bad_input_is_one_line(
    args: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli_inprocess(
        *args, *TINY, f"out_dir={tmp_path / 'out'}", monkeypatch=monkeypatch
    )
    line = assert_one_line_error(code, out, err)
    assert says in line, line
    assert not (tmp_path / "out").exists()


def test_hydra_spellings_that_make_sense_are_accepted(tmp_path: Path) -> None:
    r = cli("train", "--cfg", "job", "model=cnn")  # Hydra's form of --cfg
    assert r.returncode == 0 and "name: cnn" in r.stdout, r.stderr
    r = cli("sweep", "reg=glob(l*)", *TINY, f"out_dir={tmp_path}", "--dry-run")
    assert r.returncode == 0 and "mlp-l1-adam-s0" in r.stdout and "mlp-l2-adam-s0" in r.stdout
    assert "mlp-none-adam-s0" not in r.stdout  # glob(l*): l1, l2, labelsmooth only
    r = cli("sweep", "reg=none,l2", "~seeds", *TINY, f"out_dir={tmp_path}", "--dry-run")
    assert r.returncode == 2 and "exclude_keys" not in r.stderr and "'seeds'" in r.stderr


def test_broken_yaml_in_the_user_folder_is_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "study").mkdir()
    (conf / "model" / "bad.yaml").write_text("name: bad\n  hidden: [1\n")
    (conf / "study" / "bad.yaml").write_text("overrides:\n  reg: [none\n")
    for args, file in ((["train", "model=bad"], "model/bad.yaml"), (["sweep", "study=bad", "--dry-run"], "study/bad.yaml")):  # fmt: skip
        r = cli("--config-dir", str(conf), *args, cwd=tmp_path)
        line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
        assert file in line and "not valid YAML" in line and "(line " in line, line


@pytest.mark.parametrize(
    "body, says",
    [
        ("def build(num_classes):\n    return nn.Linear(64, num_classes)\n", "fails when called as fn(input_shape="),
        ("def build(input_shape, num_classes):\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))\n", "it must return one score per class, (2, 10)"),
        ("def build(input_shape, num_classes):\n    return nn.Flatten()\n", "has no trainable parameters"),
        ("def build(input_shape, num_classes):\n    return nn.Sequential(nn.Linear(3, num_classes))\n", "fails in its forward"),
    ],
)  # fmt: skip
def test_a_broken_user_model_fails_before_any_run_folder(
    body: str, says: str, tmp_path: Path
) -> None:
    folder = tmp_path / "regbench_conf"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "broken_nets.py").write_text(f"from torch import nn\n\n\n{body}")
    (folder / "model" / "broken.yaml").write_text("_target_: broken_nets.build\nname: broken\n")
    r = cli("train", "model=broken", *TINY[:3], cwd=tmp_path)
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert says in line and "broken_nets.py" in line, line  # the file to change
    assert not (tmp_path / "outputs").exists()


def test_a_model_calling_sys_exit_is_a_failure_not_slurm(tmp_path: Path) -> None:
    folder = tmp_path / "regbench_conf"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "quitting.py").write_text(
        "import sys\nfrom torch import nn\n\n\nclass Quit(nn.Linear):\n"
        "    def forward(self, x):\n        if self.training:\n            sys.exit(0)\n"
        "        return super().forward(x.flatten(1))\n\n\n"
        "def build(input_shape, num_classes):\n    return Quit(64, num_classes)\n"
    )
    (folder / "model" / "quit.yaml").write_text("_target_: quitting.build\nname: quit\n")
    r = cli("train", "model=quit", *TINY[:3], cwd=tmp_path)
    assert r.returncode == 1 and "SLURM" not in r.stdout + r.stderr, r.stderr
    assert "sys.exit(0)" in r.stderr
    s = json.loads((tmp_path / "outputs" / "quit-none-adam-s0" / "summary.json").read_text())
    assert s["status"] == "failed"


def test_resume_with_an_unreadable_config_names_it(tmp_path: Path) -> None:
    r = cli("train", *TINY, f"out_dir={tmp_path}", "name=run")
    assert r.returncode == 0, r.stderr
    (tmp_path / "run" / "config.yaml").write_text("data: [unclosed\n")
    r = cli("train", *TINY, f"out_dir={tmp_path}", "name=run", "resume=true")
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert "config.yaml is unreadable" in line and str(tmp_path / "run") in line, line


def test_a_subset_above_the_pool_is_said_once(tmp_path: Path) -> None:
    r = cli("train", *TINY[:2], "data.subset=99999", f"out_dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "data.subset=99999" in ln]
    assert len(said) == 1 and "all of them are used" in said[0], r.stderr


# ---- sweeps ------------------------------------------------------------------------------------
def _interrupted_sweep(out: Path, args: list[str]) -> None:
    """Start a sweep, SIGINT it once a run has finished an epoch and the next is under way."""
    proc = subprocess.Popen(cli_cmd("sweep", *args, f"out_dir={out}"), env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=ctrl_c_works)  # fmt: skip
    try:
        while not list(out.glob("sweeps/*/*/last.pt")):
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        proc.kill()


def test_a_moved_sweep_resumes_its_interrupted_run(tmp_path: Path) -> None:
    args = ["reg=none", "seed=0", "trainer.epochs=40", "trainer.progress=none", "sweep_name=moved"]
    _interrupted_sweep(tmp_path / "a", args)
    run = tmp_path / "a" / "sweeps" / "moved" / "mlp-none-adam-s0"
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    shutil.move(tmp_path / "a", tmp_path / "b")
    r = cli(
        "sweep",
        *args[:-2],
        "trainer.progress=plain",
        "sweep_name=moved",
        f"out_dir={tmp_path / 'b'}",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    moved = tmp_path / "b" / "sweeps" / "moved" / "mlp-none-adam-s0"
    assert "resumed from" in r.stdout and "holds another run" not in r.stdout + r.stderr
    assert json.loads((moved / "summary.json").read_text())["epochs_run"] == 40


def test_sweep_tables_keep_bracketed_values_and_show_progress(tmp_path: Path) -> None:
    r = cli("sweep", "reg=[bn,l2],none", *TINY, f"out_dir={tmp_path}", "trainer.progress=plain")
    assert r.returncode == 0, r.stderr
    assert "reg=[bn,l2]" in r.stdout  # the best-per-group table: not eaten as rich markup
    progress = [ln for ln in r.stdout.splitlines() if ln.startswith("sweep: run ")]
    assert progress[0].startswith("sweep: run 1 of 2 · 0 done · 0 failed")
    assert progress[1].startswith("sweep: run 2 of 2 · 1 done") and "left" in progress[1]
    epochs = [ln for ln in r.stdout.splitlines() if "epoch " in ln]
    assert epochs and all(len(ln) <= 100 for ln in epochs), epochs
    index = json.loads(next(tmp_path.glob("sweeps/*/sweep.json")).read_text())
    assert all(r["status"] == "completed" and r["logs"] for r in index["runs"])


def test_help_lines_fit_100_columns() -> None:
    env = cli_env() | {"COLUMNS": "100"}
    for args in (["--help"], ["train", "--help"], ["sweep", "--help"], ["compare", "--help"]):
        r = subprocess.run(cli_cmd(*args), capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        assert all(len(ln) <= 100 for ln in r.stdout.splitlines()), [ln for ln in r.stdout.splitlines() if len(ln) > 100]  # fmt: skip


def test_offline_download_does_not_suggest_itself(tmp_path: Path) -> None:
    env = cli_env() | {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    r = subprocess.run(cli_cmd("train", "data=mnist", f"data.root={tmp_path}", "data.download=true",
                               *TINY[:2], f"out_dir={tmp_path / 'o'}"),
                       capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert "download failed" in line and "data.download=true" not in line, line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "args, says",
    [
        (["compare", ".", "--delta", "half"], "Invalid value for '--delta'"),
        (["sweep", "reg=none,l2", "--until-decided", "--futility", "x"], "'--futility'"),
        (["compare", ".", "--bogus"], "No such option: --bogus"),
        (["compare"], "Missing argument 'paths'"),
        (["tain"], "No such command 'tain'"),
    ],
)
def test_a_wrong_option_is_one_line_not_a_usage_block(args: list[str], says: str) -> None:
    """Typer's own usage errors (a value of the wrong type, an unknown option or command) are one
    `error:` line that names the command's --help, like regbench's own errors."""
    r = subprocess.run(cli_cmd(*args), capture_output=True, text=True, env=cli_env())
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert says in line and line.endswith("--help"), line
