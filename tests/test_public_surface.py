"""The public surface is deliberate: pinned here, changed only on purpose."""

from __future__ import annotations

import importlib

import pytest

import apisec
import apisec.ratelimit

EXPECTED_TOP_LEVEL = [
    "ApiKeyService",
    "ApiSecError",
    "AuditEvent",
    "AuthenticationError",
    "ClientError",
    "ConfigurationError",
    "ContentSecurityPolicy",
    "CorsDecision",
    "CorsPolicy",
    "FieldError",
    "InvalidApiKey",
    "InvalidToken",
    "KeyRing",
    "MalformedProblem",
    "PayloadTooLarge",
    "PermissionDenied",
    "Problem",
    "RateLimitExceeded",
    "RateLimiter",
    "SecurityHeaders",
    "SigningKey",
    "StoreError",
    "TokenService",
    "UnsafeURL",
    "ValidationError",
    "WebhookError",
    "WebhookSigner",
    "WebhookVerifier",
    "check_url",
    "validation_problem",
]

PUBLIC_MODULES = [
    "apisec.errors",
    "apisec.problems",
    "apisec.audit",
    "apisec.testing",
    "apisec.webhooks",
    "apisec.webhooks.redis",
    "apisec.pkce",
    "apisec.ssrf",
    "apisec.cors",
    "apisec.headers",
    "apisec.tokens",
    "apisec.tokens.redis",
    "apisec.ratelimit",
    "apisec.ratelimit.redis",
    "apisec.apikeys",
    "apisec.apikeys.redis",
    "apisec.validation",
    "apisec.passwords",
    "apisec.login",
    "apisec.clientaddr",
    "apisec.authz",
    "apisec.asgi",
    "apisec.wsgi",
    "apisec.oauth",
    "apisec.outbound",
    "apisec.fastapi",
    "apisec.flask",
    "apisec.django",
    "apisec.cli",
    "apisec.demo",
]


def _isort_style(names: list[str]) -> list[str]:
    """CONSTANTS, then Classes, then functions, each alphabetical (ruff RUF022)."""
    return sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))


def test_top_level_all_is_pinned_and_sorted() -> None:
    """apisec.__all__ is exactly the expected names, in sorted order."""
    assert apisec.__all__ == EXPECTED_TOP_LEVEL
    assert apisec.__all__ == _isort_style(apisec.__all__)


def test_every_exported_name_exists() -> None:
    """Each name in __all__ is importable from apisec."""
    for name in apisec.__all__:
        assert getattr(apisec, name) is not None


def test_top_level_names_are_the_modules_own() -> None:
    """`from apisec import X` gives the very object its module defines, listed in __all__
    there, and `dir(apisec)` shows every exported name."""
    for module_name, names in apisec._EXPORTS.items():
        module = importlib.import_module(module_name)
        for name in names:
            assert getattr(apisec, name) is getattr(module, name)
            assert name in module.__all__
    exported = [name for names in apisec._EXPORTS.values() for name in names]
    assert sorted(exported) == sorted(apisec.__all__)
    assert set(apisec.__all__) <= set(dir(apisec))
    with pytest.raises(AttributeError, match="NoSuchName"):
        _ = apisec.NoSuchName


def test_import_apisec_loads_no_concern_module() -> None:
    """`import apisec` imports none of the concern modules (they load on first use), and
    `from apisec import TokenService` then loads the tokens package only."""
    import subprocess
    import sys

    code = (
        "import sys, apisec;"
        "heavy = ('apisec.tokens', 'apisec.apikeys', 'apisec.webhooks', 'apisec.ratelimit',"
        " 'apisec.cors', 'apisec.ssrf', 'apisec.headers', 'jwt', 'cryptography');"
        "print(','.join(m for m in heavy if m in sys.modules));"
        "from apisec import TokenService;"
        "print(TokenService.__module__, 'apisec.webhooks' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["", "apisec.tokens._service False"]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_modules_declare_all(module_name: str) -> None:
    """Every public module declares __all__ and every listed name resolves."""
    module = importlib.import_module(module_name)
    assert isinstance(module.__all__, list)
    assert module.__all__ == _isort_style(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name}"


def test_import_does_not_pull_in_redis_or_frameworks() -> None:
    """`import apisec` stays light: no redis, no web framework, no httpx at import time."""
    import subprocess
    import sys

    code = (
        "import sys, apisec, apisec.problems, apisec.audit, apisec.testing, apisec.webhooks,"
        " apisec.pkce, apisec.ssrf, apisec.tokens, apisec.cors, apisec.headers, apisec.ratelimit,"
        " apisec.apikeys, apisec.validation, apisec.passwords, apisec.login, apisec.oauth;"
        "bad = [m for m in ('redis', 'starlette', 'flask', 'django', 'pydantic', 'msgspec',"
        " 'argon2', 'httpx', 'httpcore', 'anyio') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_redis_stores_are_importable_from_their_packages_lazily() -> None:
    """The contract names (apisec.ratelimit.RedisStore...) resolve, loading redis only then."""
    import subprocess
    import sys

    code = (
        "import sys, apisec.ratelimit as r, apisec.tokens as t, apisec.apikeys as a;"
        "assert 'redis' not in sys.modules;"
        "from apisec.ratelimit import RedisStore, AsyncRedisStore;"
        "from apisec.tokens import RedisRefreshTokenStore, AsyncRedisRefreshTokenStore;"
        "from apisec.apikeys import RedisApiKeyStore, AsyncRedisApiKeyStore;"
        "from apisec.webhooks import RedisReplayGuard, AsyncRedisReplayGuard;"
        "assert 'redis' in sys.modules;"
        "print(RedisStore.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "apisec.ratelimit.redis"
    with pytest.raises(AttributeError):
        _ = apisec.ratelimit.NoSuchStore


def test_fastapi_integration_imports_fastapi_only_when_used() -> None:
    """`import apisec.fastapi` loads no framework; the first name used loads FastAPI."""
    import subprocess
    import sys

    code = (
        "import sys, apisec.fastapi as f;"
        "assert not [m for m in ('fastapi', 'starlette', 'pydantic') if m in sys.modules];"
        "f.Bearer;"
        "print('fastapi' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_integrations_import_their_framework_only_when_used() -> None:
    """apisec.flask and apisec.django load no framework until an app or middleware is built;
    `import apisec` loads neither integration."""
    import subprocess
    import sys

    code = (
        "import sys, apisec;"
        "assert 'apisec.flask' not in sys.modules and 'apisec.django' not in sys.modules;"
        "import apisec.flask, apisec.django;"
        "print(','.join(m for m in ('flask', 'werkzeug', 'django') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _spelled_out() -> list[type]:
    from apisec import asgi, wsgi
    from apisec.tokens import AsyncTokenService, TokenService

    return [
        TokenService,
        AsyncTokenService,
        asgi.BearerAuthMiddleware,
        asgi.ApiKeyAuthMiddleware,
        wsgi.BearerAuthMiddleware,
        wsgi.ApiKeyAuthMiddleware,
    ]


@pytest.mark.parametrize("cls", _spelled_out(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_options_are_spelled_out(cls: type) -> None:
    """No ``**options``: every keyword a public class takes is in its signature."""
    import inspect

    kinds = [p.kind for p in inspect.signature(cls).parameters.values()]
    assert inspect.Parameter.VAR_KEYWORD not in kinds
