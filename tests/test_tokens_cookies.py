"""RefreshCookie: the refresh token in a __Host- cookie, set, cleared and read back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec.tokens import DuplicateCookie, RefreshCookie, SigningKey, TokenService


def test_set_carries_every_protective_attribute() -> None:
    """__Host- prefix, Secure, HttpOnly, SameSite=Strict, Path=/ and the token's lifetime."""
    service = TokenService(
        SigningKey.generate("ES256"),
        issuer="https://a.example",
        audience="https://b.example",
        refresh_ttl=timedelta(days=2),
    )
    pair = service.issue("user_1")
    name, value = RefreshCookie.for_service(service).set(pair.refresh_token)
    assert name == "Set-Cookie"
    attributes = value.split("; ")
    assert attributes[0] == f"__Host-refresh={pair.refresh_token}"
    assert set(attributes[1:]) == {
        "Max-Age=172800",
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
    }
    assert "Domain" not in value


def test_clear_expires_the_cookie_with_the_same_attributes() -> None:
    """Clearing sends an empty value with Max-Age=0 on the same name and path."""
    _, value = RefreshCookie().clear()
    assert value.startswith("__Host-refresh=; Max-Age=0; Path=/; Secure; HttpOnly")


def test_round_trip_among_other_cookies() -> None:
    """The token reads back from a Cookie header with other cookies around it."""
    cookie = RefreshCookie()
    assert cookie.read(["a=1; __Host-refresh=rt_x.y; b=2"]) == "rt_x.y"
    assert cookie.read(["a=1", "__Host-refresh=rt_x.y"]) == "rt_x.y"
    assert cookie.read(["a=1"]) is None
    assert cookie.read(["refresh=rt_x.y; __host-refresh=rt_x.y"]) is None


def test_a_planted_second_cookie_is_refused() -> None:
    """Two cookies of the name (cookie tossing) are a 400, never "first one wins"."""
    with pytest.raises(DuplicateCookie) as caught:
        RefreshCookie().read(["__Host-refresh=rt_a.b; __Host-refresh=rt_evil.c"])
    assert caught.value.status == 400
    assert "rt_evil" not in caught.value.to_problem().to_json().decode()


@pytest.mark.parametrize(
    "kwargs",
    [{"name": "refresh"}, {"name": "__Secure-refresh"}, {"same_site": "None"}, {"max_age": 0}],
)
def test_unsafe_cookie_settings_are_refused(kwargs: dict[str, object]) -> None:
    """No cookie without the __Host- prefix, SameSite=None or a zero lifetime."""
    with pytest.raises(ConfigurationError):
        RefreshCookie(**kwargs)  # type: ignore[arg-type]


def test_header_injection_in_the_value_is_refused() -> None:
    """A token with ';' or CR/LF cannot be set as a cookie."""
    with pytest.raises(ConfigurationError):
        RefreshCookie().set("rt_a.b; Domain=evil.com")
    with pytest.raises(ConfigurationError):
        RefreshCookie().set("rt_a\r\nSet-Cookie: x=y")


@given(st.lists(st.text(max_size=80), max_size=4))
def test_reading_never_raises_on_garbage(headers: list[str]) -> None:
    """Arbitrary Cookie fields give a value, None or DuplicateCookie; nothing else."""
    try:
        value = RefreshCookie().read(headers)
    except DuplicateCookie:
        return
    assert value is None or ";" not in value
