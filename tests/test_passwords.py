"""Password hashing: scrypt by default, Argon2id when installed, and what never leaks."""

from __future__ import annotations

import hashlib
import logging
import time
import unicodedata
from typing import Any

import pytest

from apisec import ConfigurationError, ValidationError
from apisec.login import InvalidCredentials, LoginGuard
from apisec.passwords import PasswordHasher, hash_password, needs_rehash, verify_password
from apisec.testing import FakeClock
from tests.support.binaries import in_ci

FAST = PasswordHasher(scrypt_n_log2=10)
PASSWORD = "correct horse battery staple"


class TestHashAndVerify:
    def test_round_trip_and_wrong_password(self) -> None:
        """A hash verifies its password and nothing else; salts make each hash unique."""
        stored = FAST.hash(PASSWORD)
        assert FAST.verify(PASSWORD, stored)
        assert not FAST.verify(PASSWORD + " ", stored)
        assert not FAST.verify("", stored)
        assert FAST.hash(PASSWORD) != stored
        assert PASSWORD not in stored

    def test_default_hasher_uses_scrypt_n_2_15(self) -> None:
        """The module functions use scrypt with N=2**15, r=8, p=1 and round-trip."""
        stored = hash_password(PASSWORD)
        assert stored.startswith("$scrypt$ln=15,r=8,p=1$")
        assert verify_password(PASSWORD, stored)
        assert not verify_password("nope", stored)
        assert not needs_rehash(stored)

    def test_needs_rehash_on_parameter_change(self) -> None:
        """A hash made with other parameters (or another scheme) asks to be rehashed."""
        old = PasswordHasher(scrypt_n_log2=10).hash(PASSWORD)
        stronger = PasswordHasher(scrypt_n_log2=11)
        assert stronger.verify(PASSWORD, old)  # old hashes keep working
        assert stronger.needs_rehash(old)
        assert not stronger.needs_rehash(stronger.hash(PASSWORD))
        assert stronger.needs_rehash("$pbkdf2$whatever")

    def test_unicode_is_normalized(self) -> None:
        """NFKC: the same password typed in composed or decomposed form verifies."""
        stored = FAST.hash("pässwörd")
        assert FAST.verify("pa\u0308sswo\u0308rd", stored)

    @pytest.mark.parametrize(
        "stored",
        [
            "",
            "garbage",
            "$scrypt$ln=10,r=8,p=1$!!!$abc",
            "$scrypt$ln=40,r=8,p=1$AAAA$AAAA",
            "$scrypt$ln=10,r=8,p=1$AAAA",
            "$argon2id$v=19$m=65536,t=3,p=4$bad$bad",
        ],
    )
    def test_malformed_or_abusive_hashes_verify_false(self, stored: str) -> None:
        """Broken hashes, and ones asking for absurd cost (N=2**40), just fail."""
        assert FAST.verify(PASSWORD, stored) is False

    def test_empty_and_huge_passwords(self) -> None:
        """Empty passwords cannot be hashed; over-long ones are refused and never verify."""
        with pytest.raises(ValidationError):
            FAST.hash("")
        with pytest.raises(ValidationError):
            FAST.hash("x" * 2000)
        assert not FAST.verify("x" * 2000, FAST.hash(PASSWORD))


class TestCheapRefusals:
    def test_huge_passwords_are_refused_before_normalization(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A password longer than the cap in raw characters never reaches NFKC (18x expansion)."""
        calls: list[int] = []
        real = unicodedata.normalize

        def spy(form: Any, text: str) -> str:
            calls.append(len(text))
            return real(form, text)

        monkeypatch.setattr(unicodedata, "normalize", spy)
        huge = "\ufdfa" * 1_000_000  # NFKC makes each of these 18 characters
        assert FAST.verify(huge, None) is False
        with pytest.raises(ValidationError):
            FAST.hash(huge)
        assert FAST.verify("\ufdfa" * (FAST.max_password_bytes + 1), None) is False
        assert all(n <= FAST.max_password_bytes for n in calls)

    def test_the_dummy_hash_is_built_at_construction(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The first unknown-user check runs one scrypt, like a known-user check, not two."""
        runs: list[int] = []
        real = hashlib.scrypt

        def counting(*args: Any, **kwargs: Any) -> bytes:
            runs.append(1)
            return real(*args, **kwargs)

        monkeypatch.setattr(hashlib, "scrypt", counting)
        hasher = PasswordHasher(scrypt_n_log2=10)
        built = len(runs)
        assert hasher.verify("guess", None) is False
        assert len(runs) - built == 1

    def test_importing_passwords_hashes_nothing(self) -> None:
        """The module's default hasher (and its dummy) is built on first use, not at import."""
        import subprocess
        import sys

        code = (
            "import hashlib; calls = []; real = hashlib.scrypt;"
            "hashlib.scrypt = lambda *a, **k: calls.append(1) or real(*a, **k);"
            "import apisec.passwords as p; before = len(calls);"
            "p.verify_password('x', None); print(before, len(calls))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.split() == ["0", "2"]  # the dummy, then the check itself


class TestUnknownUsers:
    def test_unknown_user_timing_matches_known_user(self) -> None:
        """verify(pw, None) costs what a real verification costs (within 20%, as a ratio)."""
        hasher = PasswordHasher(scrypt_n_log2=13)
        stored = hasher.hash(PASSWORD)
        hasher.verify("warm", None)

        def one(stored_hash: str | None) -> float:
            start = time.perf_counter()
            hasher.verify("not the password", stored_hash)
            return time.perf_counter() - start

        # Interleaved pairs, so machine noise hits both sides alike; the fastest run of
        # each side is its truest cost. A real difference (a skipped hash) would show in
        # every round, so a round disturbed by other processes may be measured again.
        ratios = []
        for _ in range(3):
            known, unknown = [], []
            for _ in range(30):
                known.append(one(stored))
                unknown.append(one(None))
            ratios.append(min(unknown) / min(known))
            if 0.8 <= ratios[-1] <= 1.2:
                break
        assert 0.8 <= ratios[-1] <= 1.2, ratios


class TestParameters:
    def test_argon2id_when_installed(self) -> None:
        """With argon2-cffi installed, Argon2id hashes, verifies and is told apart from scrypt."""
        try:
            import argon2  # noqa: F401
        except ImportError:
            if in_ci():
                pytest.fail("CI=true but argon2-cffi is missing (the dev extra installs it)")
            pytest.skip("argon2-cffi not installed: pip install 'apisec[argon2]'")
        hasher = PasswordHasher(
            "argon2id", argon2_memory_cost=8192, argon2_time_cost=1, argon2_parallelism=1
        )
        stored = hasher.hash(PASSWORD)
        assert stored.startswith("$argon2id$")
        assert hasher.verify(PASSWORD, stored)
        assert not hasher.verify("wrong", stored)
        assert not hasher.verify("x", None)
        scrypt_hash = FAST.hash(PASSWORD)
        assert hasher.verify(PASSWORD, scrypt_hash)  # migration: old scrypt hashes still verify
        assert hasher.needs_rehash(scrypt_hash)
        assert FAST.verify(PASSWORD, stored)  # and the reverse
        assert FAST.needs_rehash(stored)

    @pytest.mark.parametrize(
        "kwargs", [{"scheme": "md5"}, {"scrypt_n_log2": 8}, {"scrypt_r": 0}, {"scrypt_p": 99}]
    )
    def test_weak_or_bad_parameters_are_refused(self, kwargs: dict[str, Any]) -> None:
        """Unknown schemes and out-of-range costs are configuration errors."""
        with pytest.raises(ConfigurationError):
            PasswordHasher(**kwargs)


class TestSecrecy:
    def test_passwords_never_reach_logs_or_errors(
        self, audit_records: list[logging.LogRecord]
    ) -> None:
        """Neither a failed login's audit record nor its error mentions the password."""
        guard = LoginGuard(clock=FakeClock())
        stored = FAST.hash(PASSWORD)
        with pytest.raises(InvalidCredentials) as caught:
            guard.attempt("ada", "198.51.100.1", lambda: FAST.verify("hunter2-wrong", stored))
        everything = repr([r.__dict__ for r in audit_records]) + repr(caught.value.__dict__)
        assert "hunter2-wrong" not in everything
        assert caught.value.to_problem().to_dict()["detail"] == "Invalid credentials."


class TestAsyncTwin:
    async def test_the_async_hasher_hashes_and_verifies_like_the_sync_one(self) -> None:
        """AsyncPasswordHasher gives hashes the sync twin verifies, and the reverse."""
        from apisec.passwords import AsyncPasswordHasher

        twin = AsyncPasswordHasher(scrypt_n_log2=10)
        stored = await twin.hash(PASSWORD)
        assert FAST.verify(PASSWORD, stored)
        assert await twin.verify(PASSWORD, FAST.hash(PASSWORD))
        assert not await twin.verify("wrong", stored)
        assert not await twin.verify(PASSWORD, None)
        assert not twin.needs_rehash(stored)
        assert repr(twin) == "AsyncPasswordHasher(scheme='scrypt')"
        with pytest.raises(ValidationError):
            await twin.hash("")

    async def test_ahash_and_averify_are_deprecated_aliases(self) -> None:
        """The old a-methods still work and warn that AsyncPasswordHasher replaces them."""
        with pytest.warns(DeprecationWarning, match="AsyncPasswordHasher"):
            stored = await FAST.ahash(PASSWORD)
        with pytest.warns(DeprecationWarning, match="averify"):
            assert await FAST.averify(PASSWORD, stored)
