"""Real clusters on this machine for the `cluster` tests: a single-node SLURM and a local Ray head.

SLURM: Debian's packages, as root, every file in one temporary folder (nothing in /etc is used):
munged (authentication), MariaDB + slurmdbd (accounting: submitit reads job states with `sacct`;
without it a cancelled job would be waited for forever), slurmctld and one slurmd with 2 CPUs in
one partition. Clients reach it through SLURM_CONF in `Slurm.env`.

Ray: `ray start --head --block` in its own process group, ended by its group id.

Where a cluster cannot start the tests skip with one line; with REGBENCH_CLUSTER_TESTS=required
(set by .ci/run) they fail instead, so CI never passes by skipping them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = "slurm-wlm slurmdbd munge mariadb-server"  # what .ci/run installs with apt
DAEMONS = ("munged", "mariadb-install-db", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "sacct", "sacctmgr", "scontrol", "scancel", "squeue", "sinfo")
SEARCH = "/usr/sbin:/usr/bin:/sbin:/bin"
NODE, CLUSTER = "node1", "regbench"
REQUEUE_DELAY_S = 10  # cred_expire: how long SLURM holds a requeued job (default 120 s)


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (CI, REGBENCH_CLUSTER_TESTS=required) with one line."""
    if os.environ.get("REGBENCH_CLUSTER_TESTS") == "required":
        pytest.fail(f"cluster tests are required here: {reason}", pytrace=False)
    pytest.skip(reason)


def _which(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SEARCH}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, ready: Callable[[], bool], log: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > end:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
            raise RuntimeError(f"{what} did not start within {timeout:.0f} s; {log}:\n{tail}")
        time.sleep(0.3)


def _end(proc: subprocess.Popen[bytes], group: bool = False) -> None:
    """SIGTERM, then SIGKILL after 20 s; group: then also SIGKILL what is left of its group."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if group:  # e.g. Ray's workers, which its head started in its process group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Slurm:
    """munged, mariadbd, slurmdbd, slurmctld, slurmd: start() in that order, stop() in reverse."""

    @staticmethod
    def missing() -> str | None:
        """Why no cluster can start here (None: it can), as one line."""
        if os.geteuid() != 0:
            return "the SLURM tests start munged, slurmdbd, slurmctld and slurmd: run them as root"
        absent = [b for b in DAEMONS + CLIENTS if _which(b) is None]
        if absent:
            return f"{', '.join(absent)} not found: apt-get install {PACKAGES}"
        return None

    def __init__(self) -> None:
        # short: unix socket paths (munge, mariadb) must stay under 108 characters
        self.root = Path(tempfile.mkdtemp(prefix="rb-slurm-"))
        self.etc = self.root / "etc"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = os.environ | {
            "SLURM_CONF": str(self.etc / "slurm.conf"),
            "MYSQL_UNIX_PORT": str(self.root / "mysql.sock"),  # how slurmdbd finds mariadbd
            "PATH": f"{os.environ.get('PATH', '')}:{SEARCH}",
        }

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A SLURM client command (sacct, scancel, ...) against this cluster."""
        return subprocess.run(
            cmd, env=self.env, capture_output=True, text=True, check=check, timeout=60
        )

    def _ok(self, *cmd: str) -> bool:
        return self.run(*cmd, check=False).returncode == 0

    def _daemon(self, name: str, *cmd: str) -> None:
        with open(self.root / f"{name}.out", "wb") as log:  # the child keeps its own copy
            self.procs.append(
                subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            )

    def start(self) -> None:
        for d in ("etc", "state", "spool", "db"):
            (self.root / d).mkdir()
        self.root.chmod(0o755)
        self._start_munge_and_mariadb()
        self._write_configs()
        r = self.root
        self._daemon("slurmdbd", "slurmdbd", "-D")
        _wait("slurmdbd", lambda: self._ok("sacctmgr", "-n", "list", "cluster"), r / "slurmdbd.log")
        self.run("sacctmgr", "-i", "add", "cluster", CLUSTER)
        self._daemon("slurmctld", "slurmctld", "-D", "-c")
        _wait("slurmctld", lambda: self._ok("scontrol", "ping"), r / "slurmctld.log")
        self._daemon("slurmd", "slurmd", "-D", "-N", NODE)
        _wait(
            "slurmd",
            lambda: self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip() == "idle",
            r / "slurmd.log",
        )

    def _start_munge_and_mariadb(self) -> None:
        """munged (authentication) and mariadbd (slurmdbd's accounting store), on unix sockets."""
        r = self.root
        key = r / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._daemon(
            "munged",
            "munged", "--foreground", "--force", f"--key-file={key}",
            f"--socket={r / 'munge.sock'}", f"--pid-file={r / 'munged.pid'}",
            f"--log-file={r / 'munged.log'}", f"--seed-file={r / 'munged.seed'}",
        )  # fmt: skip
        _wait("munged", (r / "munge.sock").exists, r / "munged.out")

        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={r / 'db'}", "--user=root",
             "--auth-root-authentication-method=socket", "--skip-test-db"],
            env=self.env, capture_output=True, check=True, timeout=120,
        )  # fmt: skip
        self._daemon(
            "mariadbd",
            "mariadbd", "--no-defaults", f"--datadir={r / 'db'}", f"--socket={r / 'mysql.sock'}",
            "--skip-networking", "--user=root", f"--pid-file={r / 'mariadbd.pid'}",
            "--innodb-buffer-pool-size=32M",
        )  # fmt: skip
        _wait("mariadbd", (r / "mysql.sock").exists, r / "mariadbd.out")

    def _write_configs(self) -> None:
        """slurmdbd.conf and slurm.conf: one node of 2 CPUs, one partition, free ports."""
        r = self.root
        dbd_port, ctld_port, slurmd_port = _free_port(), _free_port(), _free_port()
        munge = f"AuthType=auth/munge\nAuthInfo=socket={r / 'munge.sock'}"
        dbd = self.etc / "slurmdbd.conf"
        dbd.write_text(
            f"{munge}\nDbdHost=localhost\nDbdAddr=127.0.0.1\nDbdPort={dbd_port}\nSlurmUser=root\n"
            "StorageType=accounting_storage/mysql\nStorageHost=localhost\nStorageUser=root\n"
            f"StorageLoc=slurm_acct_db\nPidFile={r / 'slurmdbd.pid'}\nLogFile={r / 'slurmdbd.log'}\n"
        )
        dbd.chmod(0o600)  # slurmdbd refuses a readable one
        host = socket.gethostname().split(".")[0]  # slurmctld matches its short name
        (self.etc / "slurm.conf").write_text(
            f"""{munge},cred_expire={REQUEUE_DELAY_S}
ClusterName={CLUSTER}
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
StateSaveLocation={r / "state"}
SlurmdSpoolDir={r / "spool"}
SlurmctldPidFile={r / "slurmctld.pid"}
SlurmdPidFile={r / "slurmd.pid"}
SlurmctldLogFile={r / "slurmctld.log"}
SlurmdLogFile={r / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={dbd_port}
# for slurmdbd connections this names the munge socket
AccountingStoragePass={r / "munge.sock"}
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
KillWait=5
NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname={host} CPUs=2 State=UNKNOWN
PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""
        )

    def idle(self, timeout: float = 120) -> None:
        """Wait until no job is queued or running, in slurmctld and in the accounting records."""
        end = time.monotonic() + timeout
        while self._busy():
            assert time.monotonic() < end, self.run("squeue").stdout
            time.sleep(0.5)

    def record(self, job: str) -> str:
        """Everything SLURM kept of one job, for an assertion's message: its accounting rows (each
        start, each step, exit codes) and slurmctld's log lines about it."""
        rows = self.run("sacct", "-D", "-j", job, "--parsable2", "-o",
                        "JobID,JobIDRaw,State,ExitCode,Start,End,Elapsed", check=False).stdout  # fmt: skip
        log = (self.root / "slurmctld.log").read_text(errors="replace").splitlines()
        raw = {line.split("|")[1].split(".")[0] for line in rows.splitlines()[1:] if "|" in line}
        ids = {f"JobId={job}", *(f"JobId={r} " for r in raw), *(f"({r})" for r in raw)}
        mine = [line for line in log if any(i in line for i in ids)]
        return f"sacct:\n{rows}slurmctld.log:\n" + "\n".join(mine[-30:])

    def _busy(self) -> bool:
        if self.run("squeue", "-h", check=False).stdout.strip():
            return True
        states = self.run("sacct", "-X", "-n", "-o", "State", check=False).stdout.split()
        return any(s in ("PENDING", "RUNNING", "REQUEUED", "COMPLETING") for s in states)

    def stop(self) -> None:
        """Cancel every job, then end the daemons we started, newest first (by pid)."""
        if len(self.procs) == 5:  # slurmd up: jobs may be running
            self.run("scancel", "--user=root", check=False)
            try:
                self.idle(timeout=30)
            except AssertionError:
                pass
        for proc in reversed(self.procs):
            _end(proc)
        shutil.rmtree(self.root, ignore_errors=True)


class RayHead:
    """A local Ray head (`ray start --head --block`) that `address=auto` finds.

    Ray binds it to this machine's address even when asked for 127.0.0.1 (it resolves localhost
    to a reachable address), so the head requires a token (Ray's token authentication): `env`
    carries it to every process that talks to the cluster, as ~/.ray/auth_token does on a head.
    """

    @staticmethod
    def missing() -> str | None:
        try:
            import hydra_plugins.hydra_ray_launcher  # noqa: F401
        except ImportError:
            return "hydra-ray-launcher is not installed: pip install -e '.[ray]'"
        return None

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rb-ray-"))  # short: Ray's socket paths
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = os.environ | {
            "PYTHONPATH": str(ROOT),  # the workers import this checkout
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def start(self) -> None:
        ray = str(Path(sys.executable).parent / "ray")
        with open(self.root / "ray.out", "wb") as log:
            self.proc = subprocess.Popen(
                [ray, "start", "--head", "--block", f"--port={self.port}", "--num-cpus=2",
                 "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
                 "--object-store-memory=100000000", f"--temp-dir={self.root}"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        status = [ray, "status", f"--address=127.0.0.1:{self.port}"]

        def up() -> bool:  # answers, and reports the node's CPUs
            res = subprocess.run(status, env=self.env, capture_output=True, text=True)
            return res.returncode == 0 and "CPU" in res.stdout

        _wait("ray head", up, self.root / "ray.out")

    def stop(self) -> None:
        if self.proc is not None:
            _end(self.proc, group=True)
        shutil.rmtree(self.root, ignore_errors=True)
