"""fetch_json / afetch_json (API10): third-party JSON is trusted only after every check."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest

from apisec import ConfigurationError
from apisec.outbound import (
    AsyncSafeTransport,
    InvalidResponse,
    MalformedResponse,
    OutboundError,
    ResponseTooLarge,
    SafeTransport,
    UnexpectedContentType,
    UnexpectedStatus,
    afetch_json,
    fetch_json,
)
from apisec.ssrf import UnsafeURL
from apisec.validation import MalformedJSON, integer, string
from tests.support.http_servers import LoopbackServer

JSON = {"Content-Type": "application/json"}


@attrs.define(kw_only=True)
class Rate:
    currency: str = string(pattern=r"[A-Z]{3}")
    cents: int = integer(min=0)


@pytest.fixture
def upstream() -> Iterator[LoopbackServer]:
    """A third-party API on loopback with a route per behaviour under test."""
    with LoopbackServer("127.0.0.1") as server:
        routes = {
            "/rate": (200, b'{"currency": "EUR", "cents": 1050, "extra": true}', JSON),
            "/problem+json": (
                200,
                b'{"currency": "EUR", "cents": 1}',
                {"Content-Type": "application/vnd.rates+json; charset=utf-8"},
            ),
            "/html": (200, b"<html>login page</html>", {"Content-Type": "text/html"}),
            "/untyped": (200, b'{"currency": "EUR", "cents": 1}', {}),
            "/missing": (404, b'{"error": "nope"}', JSON),
            "/dupes": (200, b'{"currency": "EUR", "currency": "USD", "cents": 1}', JSON),
            "/nan": (200, b'{"currency": "EUR", "cents": NaN}', JSON),
            "/deep": (200, b"[" * 100 + b"]" * 100, JSON),
            "/wrong": (200, b'{"currency": "euro", "cents": -5}', JSON),
        }
        for path, (status, body, headers) in routes.items():
            server.route(path)(
                lambda h, s=status, b=body, hd=headers: h.reply(s, b, hd)  # type: ignore[misc]
            )
        bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")
        server.route("/bomb")(lambda h: h.reply(200, bomb, {**JSON, "Content-Encoding": "gzip"}))
        server.route("/endless-html")(
            lambda h: h.stream(lambda i: b"<p>" * 1000, {"Content-Type": "text/html"})
        )
        yield server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    transport = SafeTransport(allowed_schemes=["http"], allow_networks=["127.0.0.1/32"])
    with httpx.Client(transport=transport) as client:
        yield client


class TestFetchJson:
    """Each check has its own typed error; what passes is the validated object."""

    def test_valid_json_comes_back_as_the_schema_instance(
        self, http: httpx.Client, upstream: LoopbackServer
    ) -> None:
        """A JSON body matching the schema returns the instance; unknown fields are dropped."""
        rate = fetch_json(http, upstream.url("/rate"), Rate)
        assert rate == Rate(currency="EUR", cents=1050)
        assert upstream.seen[-1].headers["accept"] == "application/json"

    def test_without_a_schema_the_strictly_parsed_json_comes_back(
        self, http: httpx.Client, upstream: LoopbackServer
    ) -> None:
        """No schema: the parsed value; +json media types count as JSON."""
        data = fetch_json(http, upstream.url("/problem+json"))
        assert data == {"currency": "EUR", "cents": 1}

    def test_unknown_fields_can_be_refused(
        self, http: httpx.Client, upstream: LoopbackServer
    ) -> None:
        """allow_unknown=False turns an extra field into an InvalidResponse."""
        with pytest.raises(InvalidResponse) as caught:
            fetch_json(http, upstream.url("/rate"), Rate, allow_unknown=False)
        assert [e.field for e in caught.value.errors] == ["extra"]

    @pytest.mark.parametrize("path", ["/html", "/untyped", "/endless-html"])
    def test_a_wrong_content_type_is_refused_before_the_body_is_read(
        self, http: httpx.Client, upstream: LoopbackServer, path: str
    ) -> None:
        """HTML, a missing type, or an endless HTML body: UnexpectedContentType, nothing read."""
        with pytest.raises(UnexpectedContentType):
            fetch_json(http, upstream.url(path), Rate)

    def test_an_unexpected_status_is_refused(
        self, http: httpx.Client, upstream: LoopbackServer
    ) -> None:
        """A 404 is UnexpectedStatus carrying the code; expected_status can accept it."""
        with pytest.raises(UnexpectedStatus) as caught:
            fetch_json(http, upstream.url("/missing"))
        assert caught.value.status_code == 404
        assert fetch_json(http, upstream.url("/missing"), expected_status={404}) == {
            "error": "nope"
        }

    @pytest.mark.parametrize("path", ["/dupes", "/nan", "/deep"])
    def test_json_that_parse_json_refuses_is_a_malformed_response(
        self, http: httpx.Client, upstream: LoopbackServer, path: str
    ) -> None:
        """Duplicate keys, NaN, nesting over max_depth: MalformedResponse, from MalformedJSON."""
        with pytest.raises(MalformedResponse) as caught:
            fetch_json(http, upstream.url(path), max_depth=32)
        assert isinstance(caught.value.__cause__, MalformedJSON)

    def test_a_schema_mismatch_is_an_invalid_response_naming_every_field(
        self, http: httpx.Client, upstream: LoopbackServer
    ) -> None:
        """Each failing field is listed, for the logs."""
        with pytest.raises(InvalidResponse) as caught:
            fetch_json(http, upstream.url("/wrong"), Rate)
        assert {e.field for e in caught.value.errors} == {"currency", "cents"}

    def test_the_decoded_size_is_capped_while_decompressing(
        self, http: httpx.Client, upstream: LoopbackServer
    ) -> None:
        """A small gzip body inflating past max_bytes stops at the cap (decompression bomb)."""
        with pytest.raises(ResponseTooLarge):
            fetch_json(http, upstream.url("/bomb"), max_bytes=64 * 1024)

    def test_an_unsafe_url_is_refused_by_the_transport(self, http: httpx.Client) -> None:
        """The URL goes through the transport's SSRF policy first."""
        with pytest.raises(UnsafeURL):
            fetch_json(http, "http://169.254.169.254/latest/meta-data/")

    def test_every_error_is_a_bad_gateway_problem_without_detail(
        self, http: httpx.Client, upstream: LoopbackServer
    ) -> None:
        """The errors are OutboundErrors: 502 problems that say nothing of the upstream."""
        for path in ("/html", "/missing", "/dupes", "/wrong"):
            with pytest.raises(OutboundError) as caught:
                fetch_json(http, upstream.url(path), Rate)
            problem = caught.value.to_problem().to_dict()
            assert problem == {"type": "about:blank", "title": "Bad Gateway", "status": 502}

    @pytest.mark.parametrize("max_bytes", [0, -1, True, 1.5])
    def test_a_bad_size_cap_is_a_configuration_error(
        self, http: httpx.Client, max_bytes: Any
    ) -> None:
        """max_bytes must be a positive integer; nothing is sent otherwise."""
        with pytest.raises(ConfigurationError):
            fetch_json(http, "http://127.0.0.1:9/", max_bytes=max_bytes)

    def test_request_options_pass_through(
        self, http: httpx.Client, upstream: LoopbackServer
    ) -> None:
        """method, params, json and headers reach the upstream; Accept can be overridden."""
        upstream.route("/search")(lambda h: h.reply(200, upstream.seen[-1].body, JSON))
        found = fetch_json(
            http,
            upstream.url("/search"),
            method="POST",
            params={"q": "eur"},
            json={"currency": "EUR"},
            headers={"Accept": "application/vnd.rates+json"},
        )
        seen = upstream.seen[-1]
        assert found == {"currency": "EUR"}
        assert (seen.method, seen.path) == ("POST", "/search?q=eur")
        assert seen.headers["accept"] == "application/vnd.rates+json"


class TestAsyncFetchJson:
    """afetch_json makes the same checks through an AsyncClient."""

    async def test_the_same_checks_apply(self, upstream: LoopbackServer) -> None:
        """Valid, wrong type, malformed, invalid and oversized, through the async twin."""
        transport = AsyncSafeTransport(allowed_schemes=["http"], allow_networks=["127.0.0.1/32"])
        async with httpx.AsyncClient(transport=transport) as http:
            assert await afetch_json(http, upstream.url("/rate"), Rate) == Rate(
                currency="EUR", cents=1050
            )
            cases: list[tuple[str, type[Exception], dict[str, Any]]] = [
                ("/html", UnexpectedContentType, {}),
                ("/missing", UnexpectedStatus, {}),
                ("/dupes", MalformedResponse, {}),
                ("/wrong", InvalidResponse, {}),
                ("/bomb", ResponseTooLarge, {"max_bytes": 64 * 1024}),
            ]
            for path, error, options in cases:
                with pytest.raises(error):
                    await afetch_json(http, upstream.url(path), Rate, **options)
