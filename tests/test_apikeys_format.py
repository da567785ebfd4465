"""API key text: checksum, shape, scanner patterns, hashing with peppers."""

from __future__ import annotations

import re
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec.apikeys import Peppers, hash_api_key, is_well_formed, key_pattern
from apisec.apikeys._format import generate_key_text, split_key

ALPHABET = string.digits + string.ascii_letters


def test_shape_and_entropy() -> None:
    """Keys are prefix, underscore, 32 random base62 characters and a 6-character checksum."""
    key = generate_key_text("sk_live")
    assert re.fullmatch(r"sk_live_[0-9A-Za-z]{38}", key)
    assert is_well_formed(key)
    assert split_key(key) == ("sk_live", key[8:40])


def test_every_single_character_substitution_is_rejected() -> None:
    """Changing any one character of a key (prefix, body or checksum) fails the check."""
    key = generate_key_text("rk_live")
    for position, original in enumerate(key):
        for replacement in ALPHABET + "_-.":
            if replacement == original:
                continue
            mutated = key[:position] + replacement + key[position + 1 :]
            assert not is_well_formed(mutated), (position, replacement)


def test_ten_thousand_keys_are_unique() -> None:
    """Randomness: 10,000 generated keys never collide."""
    keys = {generate_key_text("sk_test") for _ in range(10_000)}
    assert len(keys) == 10_000


@given(st.one_of(st.text(max_size=80), st.binary(max_size=60), st.integers(), st.none()))
def test_is_well_formed_never_raises(value: Any) -> None:
    """Any input gives a bool (and random text is essentially never well-formed)."""
    assert is_well_formed(value) in (True, False)


@pytest.mark.parametrize(
    "key",
    ["", "sk_live_", "sk_live", "_abc", "sk_live_" + "0" * 38, "sk_live__" + "0" * 37,
     "ßk_live_" + "0" * 38, "sk_live_" + "0" * 39, "1sk_" + "0" * 38],
)  # fmt: skip
def test_malformed_keys(key: str) -> None:
    """Empty, truncated, zero-filled, non-ASCII and mis-sized keys are not well-formed."""
    assert not is_well_formed(key)


@pytest.mark.parametrize("prefix", ["sk_live", "rk_test", "pk", "ghp", "acme_prod_v2"])
def test_scanner_pattern_finds_real_keys_in_text(prefix: str) -> None:
    """key_pattern(prefix) finds generated keys inside other text, for secret scanners."""
    key = generate_key_text(prefix)
    pattern = re.compile(key_pattern(prefix))
    assert pattern.search(f"export API_KEY={key}\n")
    assert pattern.search(f'"{key}"').group(0) == key  # type: ignore[union-attr]
    assert not pattern.search(f"{key}x")


@pytest.mark.parametrize("prefix", ["", "1sk", "sk live", "sk-live", "sk_", "é", "a" * 33, None])
def test_bad_prefixes(prefix: Any) -> None:
    """Prefixes are letters, digits and underscores, starting with a letter."""
    with pytest.raises(ConfigurationError):
        generate_key_text(prefix)


def test_hashes_record_their_method_and_pepper() -> None:
    """Plain SHA-256 without pepper; HMAC with the pepper id otherwise; distinct results."""
    key = generate_key_text("sk_live")
    plain = hash_api_key(key)
    peppered = hash_api_key(key, b"p" * 32)
    rotated = Peppers({"v1": b"a" * 32, "v2": b"b" * 32}, current="v2")
    assert plain.startswith("sha256$") and len(plain) == 7 + 64
    assert peppered.startswith("hmac-sha256$default$")
    assert hash_api_key(key, rotated).startswith("hmac-sha256$v2$")
    assert hash_api_key(key, rotated, pepper_id="v1").startswith("hmac-sha256$v1$")
    assert len({plain, peppered, hash_api_key(key, rotated)}) == 3
    assert key not in plain + peppered


@pytest.mark.parametrize(
    ("secrets_", "current"),
    [({}, "a"), ({"a": b"short"}, "a"), ({"a": b"x" * 32}, "b"), ({"bad id": b"x" * 32}, "bad id")],
)
def test_bad_peppers(secrets_: dict[str, bytes], current: str) -> None:
    """Missing, short, unknown-current and badly named peppers are refused."""
    with pytest.raises(ConfigurationError):
        Peppers(secrets_, current=current)


def test_peppers_never_show_their_secrets() -> None:
    """repr lists pepper ids only."""
    assert "xxxx" not in repr(Peppers({"p1": b"x" * 32}, current="p1"))
