"""trainer.loggers: TensorBoard event files and MLflow runs, read back with their own readers."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, cli, cli_inprocess

TINY = ["trainer.progress=none", "data.subset=200", "model.hidden=[32]"]


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_tensorboard_scalars_and_hparams(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    r = cli("train", *TINY, "trainer.epochs=3", "trainer.loggers=[tensorboard]", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run_dir = tmp_path / "outputs" / "mlp-none-adam-s0"
    events = EventAccumulator(str(run_dir))
    events.Reload()
    rows = _rows(run_dir)
    val = events.Scalars("val_acc")
    assert [e.step for e in val] == [1, 2, 3]
    assert [e.value for e in val] == pytest.approx([float(row["val_acc"]) for row in rows])
    summary = json.loads((run_dir / "summary.json").read_text())
    (final,) = events.Scalars("final/test_acc")
    assert final.value == pytest.approx(summary["test_acc"])
    # the HParams view: the session's config and the final metrics it is compared on
    content = events.PluginTagToContent("hparams")
    infos = [plugin_data_pb2.HParamsPluginData.FromString(c) for c in content.values()]
    start = next(i.session_start_info for i in infos if i.HasField("session_start_info"))
    assert start.hparams["model.name"].string_value == "mlp"
    assert start.hparams["optim.lr"].number_value == pytest.approx(1e-3)
    experiment = next(i.experiment for i in infos if i.HasField("experiment"))
    assert "final/test_acc" in {m.name.tag for m in experiment.metric_infos}


def _mlflow_runs(out: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("regbench")
    return client, client.search_runs([exp.experiment_id])


def test_mlflow_params_metrics_summary(tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    r = cli(
        "train", *TINY, "trainer.epochs=2", "reg=dropout", "trainer.loggers=[mlflow]", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no MLflow or alembic chatter
    run_dir = tmp_path / "outputs" / "mlp-dropout-adam-s0"
    client, found = _mlflow_runs(tmp_path / "outputs")
    (run,) = found
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    assert run.data.params["reg"] == "dropout" and run.data.params["reg.dropout.p"] == "0.5"
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == [1, 2]
    assert [m.value for m in history] == pytest.approx(
        [float(r["train_loss"]) for r in _rows(run_dir)]
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert run.data.metrics["final_test_acc"] == pytest.approx(summary["test_acc"])
    assert run.data.tags["status"] == "completed" and "sweep" not in run.data.tags
    logged = client.download_artifacts(run.info.run_id, "summary.json", str(tmp_path))
    assert json.loads(Path(logged).read_text()) == summary


def test_sweep_logs_each_run_with_the_sweep_name(tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    r = cli(
        "sweep",
        *TINY,
        "trainer.epochs=1",
        "seed=0,1",
        "sweep_name=logged",
        "trainer.loggers=[tensorboard,mlflow]",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    _, found = _mlflow_runs(tmp_path / "outputs")
    assert sorted(run.info.run_name for run in found) == ["mlp-none-adam-s0", "mlp-none-adam-s1"]
    assert {run.data.tags["sweep"] for run in found} == {"logged"}
    assert {run.info.status for run in found} == {"FINISHED"}
    for name in ("mlp-none-adam-s0", "mlp-none-adam-s1"):
        assert list(
            (tmp_path / "outputs" / "sweeps" / "logged" / name).glob("events.out.tfevents.*")
        )


@pytest.mark.parametrize("logger, module", [("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_missing_extra_is_one_line(
    logger: str, module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: find_spec says None
    monkeypatch.chdir(tmp_path)
    result = cli_inprocess("train", *TINY, f"trainer.loggers=[{logger}]", monkeypatch=monkeypatch)
    line = assert_one_line_error(*result)
    assert f"needs the {logger} extra" in line and f"'.[{logger}]'" in line
    assert not (tmp_path / "outputs").exists()


def test_resumed_run_continues_its_mlflow_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from regbench import folder
    from regbench.run.job import run
    from tests.conftest import make_cfg

    overrides = [*TINY, "trainer.epochs=3", f"out_dir={tmp_path}", "trainer.loggers=[mlflow]"]
    write_metrics = folder.write_metrics

    def stop_after_first(run_dir: Path, rows: list) -> None:
        write_metrics(run_dir, rows)
        raise KeyboardInterrupt  # Ctrl-C after epoch 1

    monkeypatch.setattr(folder, "write_metrics", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        run(make_cfg(*overrides))
    monkeypatch.setattr(folder, "write_metrics", write_metrics)
    client, (killed,) = _mlflow_runs(tmp_path)
    assert killed.info.status == "KILLED"
    run(make_cfg(*overrides, "resume=true"))
    client, (resumed,) = _mlflow_runs(tmp_path)  # the same MLflow run, not a second one
    assert resumed.info.run_id == killed.info.run_id and resumed.info.status == "FINISHED"
    history = client.get_metric_history(resumed.info.run_id, "val_acc")
    assert [m.step for m in history] == [1, 2, 3]
