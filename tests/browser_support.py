"""Headless Chromium for the browser tests (Debian's `chromium`, driven by Playwright's Python API with
executable_path; Playwright's own browser download is not used).

playwright is a declared test dependency, so its absence fails the tests. A missing Chromium skips them
with the reason, except where VERISWAP_REQUIRE_BROWSER=1 (set by .ci/run, which installs it): there it
fails, so CI never passes with the browser tests silently skipped."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = next((p for p in (os.environ.get("VERISWAP_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                             shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
                 if p and Path(p).is_file()), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def launch_browser() -> Iterator:
    """Yield a launched Chromium (for a module-scoped fixture); closes it afterwards."""
    from playwright.sync_api import sync_playwright   # a test dependency: ImportError fails the test

    if CHROMIUM is None:
        msg = "no Chromium here (apt-get install chromium; or set VERISWAP_CHROMIUM=/path/to/chromium)"
        if os.environ.get("VERISWAP_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + "; VERISWAP_REQUIRE_BROWSER=1 says this machine must run the browser tests")
        pytest.skip(msg)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
