"""Issue 12: regbench as a package a new user installs, extends from their own folder, and logs.

The wheel test builds from a copy of the sources, installs the wheel (no editable install) into a
fresh venv and runs it from an empty folder with no source tree on the path. To keep it fast the
venv gets torch & co. by a path line to this interpreter's site-packages: a plain path, so that
folder's .pth files (among them an editable regbench) are not run and its regbench is not seen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "regbench_conf"
TINY = ["trainer.progress=none", "trainer.epochs=1", "data.subset=200", "model.hidden=[32]"]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REGBENCH_CONFIG_DIR")}
    return {**env, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **extra}


def test_every_config_group_is_a_listed_package() -> None:
    """A group folder missing from pyproject's `packages` ships without its YAML (no wheel needed to see it)."""
    tomllib = pytest.importorskip(
        "tomllib", reason="the standard library reads TOML from Python 3.11"
    )
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    groups = {
        f"regbench.conf.{p.name}"
        for p in (REPO / "conf").iterdir()
        if p.is_dir() and p.name != "__pycache__"
    }
    assert groups - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the built wheel; returns its bin/ folder."""
    pytest.importorskip("build", reason="the `build` package builds the wheel (dev extra)")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy: the build never writes into the checkout
    for folder in ("regbench", "conf"):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for file in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / file, src / file)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    assert built.returncode == 0, built.stdout + built.stderr
    # a config group missing from pyproject's package list: setuptools warns and may drop it
    assert "absent from the `packages` configuration" not in built.stdout + built.stderr
    (wheel,) = (tmp / "dist").glob("regbench-*.whl")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index"]
    done = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, env=_clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies (torch, hydra, ...) from this interpreter, after the venv's own packages
    (Path(site) / "shared_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir / "bin"


def run_installed(bindir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bindir / "regbench"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_clean_env(),
        timeout=300,
    )


def test_wheel_installs_and_runs_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "import regbench, regbench.config as c; print(regbench.__file__); print(c.CONF_DIR)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_clean_env(),
        check=True,
    ).stdout.split()
    venv_dir = installed.parent.resolve()
    assert all(Path(p).resolve().is_relative_to(venv_dir) for p in where), where  # not the checkout
    installed_conf = sorted(str(p.relative_to(where[1])) for p in Path(where[1]).rglob("*.yaml"))
    assert installed_conf == sorted(str(p.relative_to(REPO / "conf")) for p in (REPO / "conf").rglob("*.yaml"))  # fmt: skip

    version = run_installed(installed, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("regbench "), version.stderr

    r = run_installed(
        installed, "train", "trainer.epochs=1", cwd=tmp_path
    )  # as a new user types it
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads((tmp_path / "outputs" / "mlp-none-adam-s0" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 1

    r = run_installed(installed, "sweep", "study=regularizers", "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "27 runs, 0 already done, 27 to run" in r.stdout


# ---- the user's own folder: a study, a _target_ model and a _target_ dataset ---------------------
@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "regbench_conf"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_user_folder_is_found_by_help_train_dry_run_and_sweep(
    user_dir: Path, tmp_path: Path
) -> None:
    # ./regbench_conf is found without being named; --config-dir names any other folder
    r = cli("--help", cwd=tmp_path)
    assert "mynet" in r.stdout and "mydata" in r.stdout and "mine" in r.stdout, r.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = cli("--config-dir", str(user_dir), "--help", cwd=elsewhere)
    assert "mynet" in r.stdout, r.stdout

    r = cli("train", "model=mynet", "data=mydata", "reg=[dropout,bn,aug]", *TINY[:3], cwd=elsewhere)
    assert "unknown model option 'mynet'" in r.stderr  # not found without the folder
    r = cli(
        "train",
        "--config-dir",
        str(user_dir),
        "model=mynet",
        "data=mydata",
        "reg=[dropout,bn,aug]",
        *TINY[:3],
        cwd=elsewhere,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = elsewhere / "outputs" / "mydata-mynet-dropout+bn+aug-adam-s0"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["test_acc"] > 0.2  # 5 classes

    r = cli("sweep", "study=mine", "--dry-run", cwd=tmp_path)
    assert r.returncode == 0 and "4 runs, 0 already done, 4 to run" in r.stdout, r.stdout + r.stderr
    r = cli(
        "sweep",
        "study=mine",
        "trainer.epochs=1",
        "trainer.progress=none",
        "data.subset=100",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (sweep_dir,) = (tmp_path / "outputs" / "sweeps").iterdir()  # mine-<hash>: the study, changed
    index = json.loads((sweep_dir / "sweep.json").read_text())
    assert sorted(r["status"] for r in index["runs"]) == ["completed"] * 4
    assert {r["name"] for r in index["runs"]} == {
        f"mydata-mynet-{reg}-adam-s{s}" for reg in ("none", "dropout") for s in (0, 1)
    }
    r = cli("compare", str(sweep_dir), "--baseline", "reg=none", "--format", "csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {line.split(",")[0] for line in r.stdout.splitlines()[1:]} == {"none", "dropout"}


def _write_model(folder: Path, body: str) -> None:
    (folder / "strict_nets.py").write_text(body)
    (folder / "model" / "strict.yaml").write_text("_target_: strict_nets.build\nname: strict\n")


def test_user_model_refusing_a_switch_is_one_line(user_dir: Path, tmp_path: Path) -> None:
    _write_model(
        user_dir,
        "from torch import nn\n\ndef build(input_shape, num_classes, dropout=0.0):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.LazyLinear(num_classes))\n",
    )
    r = cli("train", "model=strict", "reg=bn", *TINY[:3], cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    (line,) = r.stderr.splitlines()
    assert "takes no 'batch_norm' argument" in line and "reg=bn" in line, line
    assert not (tmp_path / "outputs").exists()  # refused before any run folder
    r = cli("train", "model=strict", "reg=dropout", *TINY[:3], cwd=tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "body, says",
    [
        (
            "    return (np.zeros((20, 8, 8)), np.zeros(20)), (np.zeros((5, 8, 8)), np.zeros(5))",
            "training labels must be 20 integers",
        ),
        ("    return np.zeros((20, 8, 8))", "must return ((x_train, y_train), (x_test, y_test))"),
        (
            "    raise RuntimeError('no such file')",
            "bad_data.load failed: RuntimeError: no such file",
        ),
    ],
)
def test_user_dataset_mistakes_are_one_line(
    body: str, says: str, user_dir: Path, tmp_path: Path
) -> None:
    (user_dir / "bad_data.py").write_text(f"import numpy as np\n\ndef load():\n{body}\n")
    (user_dir / "data" / "bad.yaml").write_text(
        "_target_: bad_data.load\nname: bad\nval_fraction: 0.1\nsplit_seed: 0\nsubset: null\nlabel_noise: 0.0\npreprocess: standardize\n"
    )
    r = cli("train", "data=bad", *TINY, cwd=tmp_path)
    if (
        says is None
    ):  # the user's own exception: theirs to read, as a failed run with a traceback log
        assert r.returncode == 1 and "RuntimeError: no such file" in r.stderr, r.stderr
        return
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    (line,) = r.stderr.splitlines()
    assert says in line, line
