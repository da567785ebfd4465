"""Missing external programs skip tests locally but fail them loudly in CI."""

from __future__ import annotations

import pytest

from tests.support.binaries import in_ci, require_binary


def test_missing_binary_fails_when_ci_is_true(monkeypatch: pytest.MonkeyPatch) -> None:
    """With CI=true a missing redis-server/chromium is a failure, not a skip."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_binary("apisec-no-such-binary", debian_package="nothing")


def test_missing_binary_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside CI a missing program skips with the package to install."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="install the Debian package 'nothing'"):
        require_binary("apisec-no-such-binary", debian_package="nothing")


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("", False)])
def test_ci_detection(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    """CI=true (or 1) is how CI announces itself."""
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_present_binary_is_found() -> None:
    """A program on PATH is returned by path."""
    assert require_binary("sh", debian_package="dash").endswith("sh")
