"""compare --format html's report.html in a real browser: Debian's Chromium, headless, renders it
(a non-empty screenshot, every table in the DOM) without a console error. Skips where chromium
is absent (`apt-get install chromium`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.runfolders import compare, known_sweep

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
# no network, no first-run or sync machinery: the page alone, in a profile of its own
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
)  # fmt: skip
CONSOLE_ERRORS = ("Uncaught", "ERROR:CONSOLE")


def chromium(page: Path, tmp: Path, *action: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *action, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


def console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if any(e in line for e in CONSOLE_ERRORS)]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = known_sweep(tmp_path_factory.mktemp("runs"))
    out = root / "report"
    shown = compare(root / "sweeps" / "a", "--baseline", "reg=none", "--summary",
                    "--format", "html", "--out", out)  # fmt: skip
    assert shown.exit_code == 0, shown.output
    return out / "report.html"


def test_report_renders_with_its_figures_and_no_console_error(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = chromium(report, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600")
    assert shot.exists(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000  # tables and figures, not blank
    assert not console_errors(done.stderr), console_errors(done.stderr)


def test_the_dom_holds_every_table_and_image(report: Path, tmp_path: Path) -> None:
    done = chromium(report, tmp_path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert dom.count("<table>") == 2 and "test_acc vs baseline" in dom
    images = [p.split('"')[0] for p in dom.split('<img src="')[1:]]
    assert images and all((report.parent / i).is_file() for i in images)
    assert not console_errors(done.stderr)


def test_a_page_with_a_script_error_is_caught(tmp_path: Path) -> None:
    """The console check above can fail: a page whose script throws shows in the log."""
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body><script>nothing.here();</script></body></html>")
    done = chromium(page, tmp_path, "--dump-dom")
    assert console_errors(done.stderr), done.stderr[-2000:]
