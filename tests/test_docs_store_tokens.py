"""docs/stores.md's store for refresh tokens passes the suite the built-in stores pass.

The page is loaded as a module; every test of tests/test_tokens_refresh.py that takes
a ``store`` (or a fixture built on it) is collected again here, where
``store`` is the page's BackendRefreshTokenStore over a fresh backend.
"""

from __future__ import annotations

from typing import Any

import pytest

from apisec.testing import FakeClock
from tests import test_tokens_refresh as contract
from tests.support.contract import adopt, count_tests
from tests.support.docs import DOCS, load_page

PAGE = load_page(DOCS / "stores.md")
ADOPTED = adopt(contract, globals())


@pytest.fixture
def store(clock: FakeClock) -> Any:
    """The page's store over a fresh backend on the test's clock."""
    return PAGE.BackendRefreshTokenStore(PAGE.Backend(clock=clock))


def test_the_whole_contract_is_adopted() -> None:
    """Every store test of the contract module runs here too (none silently left out)."""
    assert count_tests(globals(), ADOPTED) >= 9
    assert all(name in globals() for name in ADOPTED)
