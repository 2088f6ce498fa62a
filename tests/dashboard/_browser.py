"""The browser the dashboard's tests drive: Debian's Chromium, headless, through Playwright."""

from __future__ import annotations

import os

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
MISSING = (
    f"the browser tests need Chromium at {CHROMIUM}: install it (Debian/Ubuntu: apt-get install chromium; "
    "CI installs it); Playwright drives that binary rather than downloading its own"
)


def check_chromium() -> str:
    """The browser's path; fails (never skips) with how to install it when it is missing."""
    assert os.access(CHROMIUM, os.X_OK), MISSING
    return CHROMIUM
