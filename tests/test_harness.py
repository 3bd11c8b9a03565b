"""One run harness (issue 29): a fused job's members log like solo runs, a resumed run never logs an
epoch twice, the same stop gives the same status solo or fused, the run-folder format loads no
torch, and the package keeps its shape (no import circle, small functions and modules)."""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from regbench import folder
from regbench.run import job
from tests.conftest import REPO, assert_one_line_error, cli, cli_env, cli_inprocess, make_cfg

TINY = ["trainer.progress=none", "data.subset=200", "model.hidden=[32]", "trainer.epochs=3"]
PACKAGE = REPO / "regbench"


def _tensorboard_steps(run_dir: Path, tag: str = "val_acc") -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))  # every event file in the folder, resumes included
    events.Reload()
    return [e.step for e in events.Scalars(tag)]


def _mlflow_steps(out: Path) -> dict[str, list[int]]:
    """run name -> the steps of its val_acc history, from the MLflow store under out."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("regbench")
    return {
        r.info.run_name: sorted(m.step for m in client.get_metric_history(r.info.run_id, "val_acc"))
        for r in client.search_runs([exp.experiment_id])
    }


def test_a_fused_job_logs_every_member(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    loggers = "trainer.loggers=[tensorboard,mlflow]"
    r = cli("train", *TINY, "seed=[0,1]", "trainer.fuse=2", loggers, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "outputs"
    for seed in (0, 1):
        assert _tensorboard_steps(out / f"mlp-none-adam-s{seed}") == [1, 2, 3]
    assert _mlflow_steps(out) == {"mlp-none-adam-s0": [1, 2, 3], "mlp-none-adam-s1": [1, 2, 3]}


# SIGKILL right after the loggers have written epoch 2, before anything else is written
KILLED_AFTER_LOGGING = """
import os, signal, sys
from regbench.run import loggers
from regbench.run.job import run
from tests.conftest import make_cfg

epoch = loggers.Loggers.epoch
def killed(self, row):
    epoch(self, row)
    if row["epoch"] == 2:
        os.kill(os.getpid(), signal.SIGKILL)
loggers.Loggers.epoch = killed
run(make_cfg(*sys.argv[1:]))
"""


@pytest.mark.parametrize("fused", [False, True], ids=["solo", "fused"])
def test_a_resumed_run_logs_no_epoch_twice(tmp_path: Path, fused: bool) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    seeds = ["seed=[0,1]", "trainer.fuse=2"] if fused else ["seed=0"]
    args = [*TINY, *seeds, f"out_dir={tmp_path}", "trainer.loggers=[tensorboard,mlflow]"]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_LOGGING, *args],
        capture_output=True, text=True, env=cli_env(), cwd=REPO, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    r = cli("train", *args, "resume=true")
    assert r.returncode == 0, r.stderr
    names = [f"mlp-none-adam-s{s}" for s in ((0, 1) if fused else (0,))]
    for name in names:
        assert folder.read_summary(tmp_path / name)["status"] == "completed"
        assert _tensorboard_steps(tmp_path / name) == [1, 2, 3]
    assert _mlflow_steps(tmp_path) == {name: [1, 2, 3] for name in names}


@pytest.mark.parametrize(
    "seeds", [["seed=0"], ["seed=[0,1]", "trainer.fuse=2"]], ids=["solo", "fused"]
)
def test_a_time_limit_gives_the_same_status_solo_or_fused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeds: list[str]
) -> None:
    """Inside a submitit job, SLURM's time-limit signal ends in SystemExit (requeued) or, with no
    requeue left, UncompletedJobError: either way every unfinished member is `interrupted`."""
    pytest.importorskip("submitit", reason="the slurm extra is not installed")
    from submitit.core.utils import UncompletedJobError

    write_metrics = folder.write_metrics
    for stop, out in (
        (SystemExit(0), tmp_path / "requeued"),
        (UncompletedJobError("t"), tmp_path / "last"),
    ):

        def stopped(run_dir: Path, rows: list, stop: BaseException = stop) -> None:
            write_metrics(run_dir, rows)
            if len(rows) == 2:
                raise stop

        monkeypatch.setattr(folder, "write_metrics", stopped)
        # a requeue goes on up to submitit; out of a sweep, an unfinished run exits non-zero
        with pytest.raises(SystemExit):
            job.run(make_cfg(*TINY, *seeds, f"out_dir={out}"))
        statuses = {folder.read_summary(d)["status"] for d in out.iterdir()}
        assert statuses == {"interrupted"}, (stop, statuses)


def test_sigterm_interrupts_a_run_like_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "regbench", "train", "trainer.epochs=200", "trainer.progress=none",
         "reg=[bn,l2,aug]", f"out_dir={tmp_path}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    run_dir = tmp_path / "mlp-bn+l2+aug-adam-s0"
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.startswith("epoch   1/"):
                proc.send_signal(signal.SIGTERM)
                break
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert folder.read_summary(run_dir)["status"] == "interrupted"
    (line,) = [ln for ln in err.splitlines() if ln.startswith("interrupted: continue with ")]
    assert "'reg=[bn,l2,aug]'" in line and line.endswith("resume=true"), line  # not eaten by rich
    assert "Traceback" not in err


@pytest.mark.parametrize("module", ["regbench.sweep", "regbench.compare", "regbench.folder"])
def test_the_folder_format_sweep_and_compare_load_no_torch(module: str) -> None:
    code = (
        f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env())
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_a_target_without_its_callable_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = cli_inprocess("train", "+model._target_=os.nope", monkeypatch=monkeypatch)
    line = assert_one_line_error(code, out, err)
    assert "no callable named 'nope' in 'os'" in line, line


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def _imports(tree: ast.Module, modules: dict[str, ast.Module]) -> set[str]:
    """The regbench modules a module imports, anywhere in it (functions included)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("regbench"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
    return found


def test_no_import_circle() -> None:
    modules = _modules()
    graph = {name: _imports(tree, modules) - {name} for name, tree in modules.items()}
    for name in graph:  # a package's __init__ importing its own modules is not a circle
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in graph.get(name, ()):
            assert state.get(dep) != 1, f"import circle: {' -> '.join([*path, dep])}"
            if dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_no_module_over_400_lines_and_no_function_over_60() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 400:
            long.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if size > 60:
                    long.append(f"{path.name}: {node.name} has {size} lines")
    assert not long, long
