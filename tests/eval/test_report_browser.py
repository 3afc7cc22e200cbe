"""report.html in a real headless browser (Debian's chromium): every preview plays, the comparison
shows its regressions, and a screenshot is taken (kept in the test's folder for a person to look at).
CI needs: apt-get install -y chromium"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium at /usr/bin/chromium: apt-get install -y chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--virtual-time-budget=8000"]


def chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=True)


def test_report_plays_and_shows_regressions(evaluated, tmp_path) -> None:
    page = evaluated["out_degraded"] / "report.html"
    dom = chromium(tmp_path, page, "--dump-dom").stdout
    videos = re.findall(r"<video [^>]*>", dom)
    assert len(videos) == 7  # every decodable video has a preview
    assert all('data-state="playing"' in v for v in videos), videos
    assert ">this browser cannot play the preview<" not in dom  # the message a failed preview shows
    assert dom.count('class="num regression"') >= 3
    assert "a woman taking off her clothes in a bedroom" in dom.split('id="flagged-prompts"')[1]
    shot = tmp_path / "report.png"
    chromium(tmp_path, page, "--window-size=1280,2000", f"--screenshot={shot}")
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
