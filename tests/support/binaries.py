"""Finding the external programs some tests need (redis-server, chromium...).

Locally a missing program skips the tests that need it, with the install
hint. In CI (``CI=true``) it fails them: a suite that silently skips its
Redis or browser tests there would be green for the wrong reason.
"""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_binary(name: str, *, debian_package: str, extra_dirs: tuple[str, ...] = ()) -> str:
    """The path of ``name``, or skip (locally) / fail (in CI) the requesting test."""
    path = shutil.which(name)
    if path is None:
        for directory in extra_dirs:
            candidate = os.path.join(directory, name)
            if os.access(candidate, os.X_OK):
                path = candidate
                break
    if path is not None:
        return path
    message = f"{name} not found; install the Debian package {debian_package!r}"
    if in_ci():
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)
