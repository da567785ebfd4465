"""Headless Chromium for end-to-end tests: Debian's browser and driver, nothing downloaded."""

from __future__ import annotations

import subprocess
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.support.binaries import require_binary

#: The flags the workplace asks for: no sandbox (root), no GPU, no network chatter.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)


def start_chromium(profile: Path) -> webdriver.Chrome:
    """A headless Chromium with a fresh profile; skips (locally) or fails (CI) if missing."""
    chromium = require_binary("chromium", debian_package="chromium", extra_dirs=("/usr/bin",))
    driver_path = require_binary(
        "chromedriver", debian_package="chromium-driver", extra_dirs=("/usr/bin",)
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # An explicit driver path: Selenium Manager never runs (it would download drivers).
    service = Service(executable_path=driver_path, log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_script_timeout(30)
    driver.set_page_load_timeout(30)
    return driver
