"""The demo's page in headless Chromium: the whole story from the allowed origin, blocked elsewhere.

The demo runs as a real process; Chromium loads its page from the allowed
origin (``http://127.0.0.1:<web port>``) and presses the buttons, then loads
the very same page as ``http://localhost:<web port>`` — an origin the API's
CORS policy does not list — where the browser blocks every call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.demo_process import DemoInfo, DemoProcess


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoInfo]:
    with DemoProcess() as process:
        assert process.info is not None
        yield process.info


def press(browser: Any, button: str) -> dict[str, str]:
    """Click a button and wait for its log entry; return what the page recorded."""
    log = browser.find_element(By.ID, "log")
    before = int(log.get_attribute("data-count") or 0)
    browser.find_element(By.ID, button).click()
    WebDriverWait(browser, 20).until(
        lambda b: int(b.find_element(By.ID, "log").get_attribute("data-count") or 0) > before
    )
    last = browser.find_element(By.ID, "last")
    return {
        name: last.get_attribute(f"data-{name}") or "" for name in ("step", "status", "outcome")
    }


def open_page(browser: Any, url: str) -> None:
    browser.get(url)
    WebDriverWait(browser, 20).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
    )


@pytest.fixture(scope="module")
def story(browser: Any, demo: DemoInfo) -> dict[str, Any]:
    """Every button pressed from the allowed origin, then from a refused one."""
    open_page(browser, demo.web + "/")
    password = browser.find_element(By.ID, "password")
    password.clear()
    password.send_keys(demo.password)
    seen: dict[str, Any] = {}
    for button in ("anonymous", "login", "call", "refresh", "call", "scope", "burst", "logout"):
        seen[button + ("2" if button in seen else "")] = press(browser, button)
    seen["refresh_after_logout"] = press(browser, "refresh")
    seen["cookie_visible_to_script"] = browser.execute_script("return document.cookie")
    refused = demo.web.replace("127.0.0.1", "localhost")
    assert refused != demo.web
    open_page(browser, refused + "/")
    seen["refused_origin"] = browser.execute_script("return location.origin")
    seen["refused_anonymous"] = press(browser, "anonymous")
    seen["refused_login"] = press(browser, "login")
    return seen


def test_the_allowed_origin_plays_the_whole_story(story: dict[str, Any]) -> None:
    """401 without a token, login, a call, a refresh from the cookie, 403, 429, logout."""
    statuses = {
        step: result["status"] for step, result in story.items() if isinstance(result, dict)
    }
    assert statuses["anonymous"] == "401"
    assert statuses["login"] == "200"
    assert statuses["call"] == statuses["call2"] == "200"
    assert statuses["refresh"] == "200"
    assert statuses["scope"] == "403"
    assert statuses["burst"] == "429"
    assert statuses["logout"] == "204"
    assert statuses["refresh_after_logout"] == "401"
    for step in ("anonymous", "login", "scope", "burst"):
        assert story[step]["outcome"] in ("ok", "http-error"), step  # readable, not blocked


def test_the_refresh_cookie_is_out_of_the_scripts_reach(story: dict[str, Any]) -> None:
    """The __Host- refresh cookie is HttpOnly: document.cookie never shows it."""
    assert "refresh" not in story["cookie_visible_to_script"]


def test_the_same_page_from_another_origin_is_blocked(story: dict[str, Any]) -> None:
    """Served as http://localhost, the page's calls are blocked by the browser (status 0)."""
    assert story["refused_origin"].startswith("http://localhost:")
    for step in ("refused_anonymous", "refused_login"):
        assert story[step]["outcome"] == "blocked", story[step]
        assert story[step]["status"] == "0"
