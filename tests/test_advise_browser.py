"""The advise HTML report in a real headless Chromium: it loads cleanly, draws its charts, and shoots.

Skipped where Debian's `chromium` is not installed, except under CI=true, where it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from matplotlib.image import imread
from test_advise_report import sample_report

from llmprov.core.advise.html import report_to_html

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="needs Debian's chromium (apt-get install chromium); CI=true makes this a failure",
)
# Every console message Chromium logs (with --enable-logging=stderr) reads `...:CONSOLE:N] "..."`.
CONSOLE = re.compile(r":CONSOLE(?::|\()\d+\)?\] (.*)")
WINDOW = (1200, 1600)


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None, "chromium is not installed (apt-get install chromium)"
    argv = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", *args, page.as_uri(),
    ]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)


def console_messages(stderr: str) -> list[str]:
    return [m[1] for line in stderr.splitlines() if (m := CONSOLE.search(line))]


def test_console_messages_are_caught(tmp_path: Path) -> None:
    """The check below is only worth something if a page that logs is seen to log."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('boom'); nope();</script>")
    messages = console_messages(chromium(page, tmp_path / "profile", "--dump-dom").stderr)
    assert any("boom" in m for m in messages), messages
    assert any("ReferenceError" in m for m in messages), messages


def test_report_loads_without_console_errors_and_draws_its_charts(tmp_path: Path) -> None:
    page = tmp_path / "advise.html"
    page.write_text(report_to_html(sample_report()), encoding="utf-8")
    dumped = chromium(page, tmp_path / "profile-dom", "--dump-dom")
    assert console_messages(dumped.stderr) == []
    dom = dumped.stdout
    # The DOM as the browser built it: three charts by concurrency with a line per measured
    # engine, one by request rate with a line per engine measured so.
    assert dom.count("<svg") == 4
    assert dom.count("<polyline") == 3 * 3 + 2
    assert dom.count('class="slo"') == 3
    assert "Recommendation: vllm" in dom

    shot = tmp_path / "advise.png"
    shooting = chromium(page, tmp_path / "profile-shot", f"--screenshot={shot}")
    assert console_messages(shooting.stderr) == []
    pixels = imread(shot)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    # Drawn, not blank: each engine's colour (its line and points) covers pixels of the shot.
    rgb = (pixels[..., :3] * 255).round().astype(int)
    for colour in ((0x00, 0x72, 0xB2), (0xD5, 0x5E, 0x00), (0x00, 0x9E, 0x73)):
        assert (abs(rgb - colour).max(axis=-1) <= 8).sum() > 200, colour
