"""PKCE (RFC 7636): Appendix B vector, grammar on both sides, no silent plain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec.pkce import (
    PkceError,
    challenge,
    create_pair,
    create_verifier,
    nonce,
    state,
    verify,
)

VECTOR = json.loads((Path(__file__).parent / "vectors" / "webhooks-pkce.json").read_text())[
    "pkce_rfc7636_b"
]
UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def test_rfc7636_appendix_b() -> None:
    """The RFC's verifier gives the RFC's S256 challenge, and verifies against it."""
    assert challenge(VECTOR["code_verifier"]) == VECTOR["code_challenge_s256"]
    assert verify(VECTOR["code_verifier"], VECTOR["code_challenge_s256"])
    assert verify(
        verifier=VECTOR["code_verifier"], challenge=VECTOR["code_challenge_s256"], method="S256"
    )


def test_wrong_verifier_fails() -> None:
    """Another valid verifier does not answer the challenge."""
    assert not verify(create_verifier(), VECTOR["code_challenge_s256"])


@pytest.mark.parametrize("length", [43, 64, 128])
def test_created_verifiers_follow_the_grammar(length: int) -> None:
    """Verifiers have the asked length and only unreserved characters, and differ."""
    a, b = create_verifier(length), create_verifier(length)
    assert len(a) == length
    assert set(a) <= UNRESERVED
    assert a != b


@pytest.mark.parametrize("length", [42, 129, 0, True])
def test_verifier_length_outside_43_to_128_is_refused(length: Any) -> None:
    """create_verifier refuses lengths the RFC does not allow."""
    with pytest.raises(ConfigurationError):
        create_verifier(length)


@pytest.mark.parametrize(
    "verifier", ["a" * 42, "a" * 129, "a" * 42 + "!", "a" * 42 + " ", "a" * 42 + "é", "", None, 5]
)
def test_bad_verifiers_are_refused_on_both_sides(verifier: Any) -> None:
    """challenge() raises PkceError; verify() returns False (never raises)."""
    with pytest.raises(PkceError):
        challenge(verifier)
    assert verify(verifier, VECTOR["code_challenge_s256"]) is False


@pytest.mark.parametrize(
    "bad_challenge",
    [
        "",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c",
        "é" * 43,
        None,
        b"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    ],
)
def test_malformed_challenges_are_false(bad_challenge: Any) -> None:
    """Padded, short, non-ASCII or non-str challenges never verify and never raise."""
    assert verify(VECTOR["code_verifier"], bad_challenge) is False


def test_plain_needs_an_explicit_opt_in() -> None:
    """plain is refused by default and works only with allow_plain=True."""
    verifier = create_verifier()
    with pytest.raises(ConfigurationError, match="plain"):
        challenge(verifier, "plain")
    with pytest.raises(ConfigurationError, match="plain"):
        verify(verifier, verifier, "plain")
    assert challenge(verifier, "plain", allow_plain=True) == verifier
    assert verify(verifier, verifier, "plain", allow_plain=True)
    assert not verify(verifier, create_verifier(), "plain", allow_plain=True)


@pytest.mark.parametrize("method", ["s256", "SHA256", "", "S512"])
def test_unknown_methods_are_refused(method: str) -> None:
    """Only S256 (and opted-in plain) exist; method names are case-sensitive."""
    with pytest.raises(ConfigurationError):
        challenge(create_verifier(), method)


def test_pair_hides_its_verifier() -> None:
    """create_pair's repr shows the challenge but never the verifier."""
    pair = create_pair()
    assert verify(pair.verifier, pair.challenge)
    assert pair.verifier not in repr(pair)
    assert pair.challenge in repr(pair)


def test_state_and_nonce_are_unguessable() -> None:
    """state() and nonce() give distinct URL-safe values of 256 bits by default."""
    values = {state() for _ in range(100)} | {nonce() for _ in range(100)}
    assert len(values) == 200
    assert all(len(v) == 43 for v in values)
    with pytest.raises(ConfigurationError):
        state(8)
    with pytest.raises(ConfigurationError):
        nonce(15)


@given(st.text(max_size=200), st.text(max_size=60))
def test_verify_is_total(verifier: str, challenge_: str) -> None:
    """verify() returns a bool for any strings."""
    assert verify(verifier, challenge_) in (True, False)


@given(st.text(alphabet=sorted(UNRESERVED), min_size=43, max_size=128))
def test_every_grammatical_verifier_round_trips(verifier: str) -> None:
    """Any verifier of the grammar verifies against its own challenge."""
    assert verify(verifier, challenge(verifier))
