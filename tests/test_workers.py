"""hydra/launcher=joblib: loky's workers are forked from one server process that imported torch,
torch._dynamo and the training code once (regbench.run.workers), not fresh interpreters that each
import them before their first run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from regbench.run import workers

# in a process of its own: loky's start method and its reusable executor are process-wide
SCRIPT = """
import sys
from joblib import Parallel, delayed
from regbench.run import workers

def loaded():
    return all(m in sys.modules for m in workers.PRELOAD)

if __name__ == "__main__":
    assert "torch" not in sys.modules  # the server imports it, not this process
    print(workers.fork_from_server(sys.argv[1]))
    print(Parallel(n_jobs=2, backend="loky")(delayed(loaded)() for _ in range(4)))
"""


def _workers_see(launcher: str, tmp_path: Path) -> list[str]:
    script = tmp_path / "workers_see.py"
    script.write_text(SCRIPT)
    res = subprocess.run([sys.executable, str(script), launcher], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


@pytest.mark.skipif(
    sys.platform != "linux" or any(Path(d).exists() for d in workers.GPU_DRIVERS),
    reason="the forkserver is used on Linux without a GPU",
)
def test_joblib_workers_start_with_the_training_code_imported(tmp_path: Path) -> None:
    assert _workers_see("joblib", tmp_path) == ["True", "[True, True, True, True]"]


def test_other_launchers_leave_the_workers_as_loky_makes_them(tmp_path: Path) -> None:
    assert _workers_see("basic", tmp_path) == ["False", "[False, False, False, False]"]
