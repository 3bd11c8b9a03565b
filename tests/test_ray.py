"""`regbench sweep hydra/launcher=ray` on a real Ray cluster: a local head started by the fixture.

The sweep joins it with `hydra.launcher.ray.init.address=auto`, as on a cluster's head node (with
Ray's token authentication on, as Ray 2.x sets it up by default).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clusters import ROOT, RayHead, unavailable
from tests.test_sweep import TINY, index, statuses

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    reason = RayHead.missing()
    if reason:
        unavailable(reason)
    head = RayHead()
    try:
        head.start()
    except (OSError, RuntimeError) as exc:
        head.stop()
        unavailable(f"could not start a Ray head: {str(exc).splitlines()[0]}")
    yield head
    head.stop()


def sweep(head: RayHead, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "regbench", "sweep", *args, "hydra/launcher=ray",
           "hydra.launcher.ray.init.address=auto", f"out_dir={out}"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=head.env, cwd=ROOT, timeout=600)


def test_grid_runs_on_the_ray_cluster(ray_head: RayHead, tmp_path: Path) -> None:
    res = sweep(ray_head, tmp_path, "reg=none,dropout", "seed=0,1", *TINY)
    assert res.returncode == 0, res.stderr
    # joined the running head; did not start a Ray of its own
    assert re.search(
        rf"Connecting to existing Ray cluster at address: [\d.]+:{ray_head.port}\b", res.stderr
    )
    idx = index(tmp_path)
    assert idx["launcher"] == "ray" and len(idx["runs"]) == 4
    assert set(statuses(tmp_path).values()) == {"completed"}
    for r in idx["runs"]:
        files = {p.name for p in Path(r["dir"]).iterdir()}
        assert {"config.yaml", "metrics.csv", "summary.json", "best.pt", "last.pt"} <= files
    assert "(_run_job pid=" in res.stdout  # the jobs' output, forwarded from Ray's workers


def test_resources_per_job_are_ray_resources(ray_head: RayHead, tmp_path: Path) -> None:
    # as the launcher documents: ray.remote options per job. The head has 2 CPUs and no GPU:
    # with num_cpus=2 and num_gpus=0 Ray runs the jobs one after the other, on the CPU
    res = sweep(ray_head, tmp_path, "seed=0,1", *TINY, "+hydra.launcher.ray.remote.num_cpus=2",
                "+hydra.launcher.ray.remote.num_gpus=0")  # fmt: skip
    assert res.returncode == 0, res.stderr
    runs = [Path(r["dir"]) for r in index(tmp_path)["runs"]]
    assert set(statuses(tmp_path).values()) == {"completed"} and len(runs) == 2
    spans = sorted(
        ((d / "config.yaml").stat().st_mtime, (d / "summary.json").stat().st_mtime) for d in runs
    )
    assert spans[0][1] <= spans[1][0], "two 2-CPU jobs overlapped on a 2-CPU cluster"
    assert all('"device": "cpu"' in (d / "summary.json").read_text() for d in runs)
