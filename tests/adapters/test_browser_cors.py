"""CORS end to end in headless Chromium: what a page's fetch() can and cannot read.

A page served from one loopback origin calls the protected ASGI stack
(under uvicorn) on another port with ``fetch`` — simple and preflighted,
credentialed and not. The same page served from a third port, not in the
policy, makes the same calls. The browser, not a test client, decides what
the script may read; the tests assert what the script observed. Chromium
starts once for the module and loads two pages.
"""

from __future__ import annotations

import secrets
from typing import Any

import attrs
import pytest
from selenium import webdriver

from apisec._types import Receive, Scope, Send
from tests.support.server_apps import StackConfig, build_asgi, token_service
from tests.support.servers import UvicornServer, plain

CALLS = (
    "simple",
    "simpleCredentialed",
    "simplePost",
    "preflightedGet",
    "preflightedCredentialed",
    "preflightedDelete",
    "unauthenticated",
    "headerNotAllowed",
    "methodNotAllowed",
    "otherApiPlain",
    "otherApiCredentialed",
)
PAGE = b"<!doctype html><meta charset=utf-8><title>front end</title><p>front end</p>"

# Runs in the page (execute_async_script): every call, each reported as what the
# script could see — the status, body and two headers, or the error fetch threw.
PROBE = """
const [api, apiNoCredentials, token, done] = arguments;
const bearer = {Authorization: "Bearer " + token};
async function probe(url, init) {
  try {
    const response = await fetch(url, init);
    return {
      ok: true,
      status: response.status,
      body: await response.text(),
      contentType: response.headers.get("content-type"),
      remaining: response.headers.get("x-ratelimit-remaining"),
      nosniff: response.headers.get("x-content-type-options"),
    };
  } catch (error) {
    return {ok: false, error: error.name};
  }
}
const calls = {
  simple: [api + "/health", {}],
  simpleCredentialed: [api + "/health", {credentials: "include"}],
  simplePost: [api + "/health", {method: "POST", body: "x",
                                 headers: {"Content-Type": "text/plain"}}],
  preflightedGet: [api + "/me", {headers: bearer}],
  preflightedCredentialed: [api + "/me", {headers: bearer, credentials: "include"}],
  preflightedDelete: [api + "/orders/1", {method: "DELETE", headers: bearer}],
  unauthenticated: [api + "/me", {}],
  headerNotAllowed: [api + "/me", {headers: {...bearer, "X-Not-Allowed": "1"}}],
  methodNotAllowed: [api + "/orders/1", {method: "PUT", headers: bearer}],
  otherApiPlain: [apiNoCredentials + "/health", {}],
  otherApiCredentialed: [apiNoCredentials + "/health", {credentials: "include"}],
};
const names = Object.keys(calls);
Promise.all(names.map((name) => probe(...calls[name]))).then(
  (results) => done(Object.fromEntries(names.map((name, i) => [name, results[i]]))),
  (error) => done({scriptError: String(error)}),
);
"""


async def page_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The front end: one HTML page on every path."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": PAGE})


@pytest.fixture(scope="module")
def observed(browser: webdriver.Chrome) -> dict[str, dict[str, Any]]:
    """What the page script saw, loaded from the allowed origin and from a refused one."""
    with UvicornServer(plain(page_app), hosts=["127.0.0.1"], sockets=2, health="/") as pages:
        allowed, refused = pages.url(index=0), pages.url(index=1)
        credentialed = StackConfig(
            secret=secrets.token_hex(32), origins=(allowed,), quota=1000, https=False
        )
        plain_cors = attrs.evolve(credentialed, credentials=False)
        token = token_service(credentialed).issue("alice", scope="orders:read").access_token
        with (
            UvicornServer(plain(build_asgi(credentialed)), hosts=["127.0.0.1"]) as api,
            UvicornServer(plain(build_asgi(plain_cors)), hosts=["127.0.0.1"]) as other_api,
        ):
            seen = {}
            for name, origin in (("allowed", allowed), ("refused", refused)):
                browser.get(origin + "/")
                assert browser.execute_script("return location.origin") == origin
                result = browser.execute_async_script(PROBE, api.url(), other_api.url(), token)
                assert set(result) == set(CALLS), result
                seen[name] = result
            return seen


def read(result: dict[str, Any], status: int) -> None:
    assert result["ok"] is True, result
    assert result["status"] == status


def blocked(result: dict[str, Any]) -> None:
    assert result == {"ok": False, "error": "TypeError"}


class TestAllowedOrigin:
    def test_a_simple_request_is_readable(self, observed: dict[str, Any]) -> None:
        """A plain cross-origin GET from the allowed origin reads status and body."""
        result = observed["allowed"]["simple"]
        read(result, 200)
        assert '"principal":null' in result["body"]

    def test_a_credentialed_simple_request_is_readable(self, observed: dict[str, Any]) -> None:
        """credentials: "include" works: the policy allows credentials for this exact origin."""
        read(observed["allowed"]["simpleCredentialed"], 200)

    def test_a_simple_post_is_readable(self, observed: dict[str, Any]) -> None:
        """A POST with a safelisted content type goes without a preflight and is readable."""
        read(observed["allowed"]["simplePost"], 200)

    def test_a_preflighted_request_with_a_token_is_readable(self, observed: dict[str, Any]) -> None:
        """An Authorization header makes Chromium preflight; the API allows it and answers 200."""
        result = observed["allowed"]["preflightedGet"]
        read(result, 200)
        assert '"subject": "alice"' in result["body"]

    def test_a_credentialed_preflighted_request_is_readable(self, observed: dict[str, Any]) -> None:
        """Credentials and a preflight together pass Chromium's stricter checks."""
        read(observed["allowed"]["preflightedCredentialed"], 200)

    def test_a_preflighted_delete_is_readable(self, observed: dict[str, Any]) -> None:
        """DELETE, allowed by the policy, goes through its preflight."""
        read(observed["allowed"]["preflightedDelete"], 200)

    def test_a_401_problem_is_readable_by_the_front_end(self, observed: dict[str, Any]) -> None:
        """The refusal keeps its CORS headers, so the script can read the 401 problem."""
        result = observed["allowed"]["unauthenticated"]
        read(result, 401)
        assert result["contentType"] == "application/problem+json"
        assert '"status":401' in result["body"].replace(" ", "")

    def test_only_exposed_headers_are_visible(self, observed: dict[str, Any]) -> None:
        """X-RateLimit-Remaining is exposed by the policy; X-Content-Type-Options is not."""
        result = observed["allowed"]["simple"]
        assert result["remaining"] is not None
        assert int(result["remaining"]) >= 0
        assert result["nosniff"] is None

    def test_a_header_outside_the_policy_is_blocked(self, observed: dict[str, Any]) -> None:
        """A request header the policy does not allow fails its preflight: fetch rejects."""
        blocked(observed["allowed"]["headerNotAllowed"])

    def test_a_method_outside_the_policy_is_blocked(self, observed: dict[str, Any]) -> None:
        """PUT is not in the policy: the preflight fails and fetch rejects."""
        blocked(observed["allowed"]["methodNotAllowed"])


class TestCredentialsNotAllowed:
    def test_an_uncredentialed_request_is_readable(self, observed: dict[str, Any]) -> None:
        """An API whose policy omits credentials still serves the origin without them."""
        read(observed["allowed"]["otherApiPlain"], 200)

    def test_a_credentialed_request_is_blocked(self, observed: dict[str, Any]) -> None:
        """Without Access-Control-Allow-Credentials Chromium hides the credentialed response."""
        blocked(observed["allowed"]["otherApiCredentialed"])


class TestRefusedOrigin:
    @pytest.mark.parametrize("call", CALLS)
    def test_every_call_from_an_origin_outside_the_policy_is_blocked(
        self, observed: dict[str, Any], call: str
    ) -> None:
        """The same page on a port the policy does not name cannot read any response."""
        blocked(observed["refused"][call])
