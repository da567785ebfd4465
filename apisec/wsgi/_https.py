"""HTTPSRedirectMiddleware (WSGI): plain HTTP is redirected (GET, HEAD) or refused."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from apisec._adapter_core import proxies_or_default
from apisec._http import HttpsRequired, check_https_options, https_location
from apisec._types import Environ, StartResponse, WSGIApp
from apisec.clientaddr import TrustedProxies
from apisec.wsgi._base import header_values, problem_response, respond

__all__ = ["HTTPSRedirectMiddleware"]


class HTTPSRedirectMiddleware:
    """The WSGI twin of :class:`apisec.asgi.HTTPSRedirectMiddleware`."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        host: str | None = None,
        https_port: int | None = None,
        proxies: TrustedProxies | None = None,
    ) -> None:
        check_https_options(host, https_port)
        self.app = app
        self.host = host
        self.https_port = https_port
        self.proxies = proxies_or_default(proxies)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        scheme = self.proxies.scheme(
            environ.get("REMOTE_ADDR"),
            environ.get("wsgi.url_scheme", "http"),
            header_values(environ, "x-forwarded-proto"),
            forwarded=header_values(environ, "forwarded"),
        )
        if scheme == "https":
            return self.app(environ, start_response)
        host = self.host or environ.get("HTTP_HOST")
        location = None
        if host is not None:
            path = _quoted_path(environ)
            location = https_location(
                host, self.https_port, path or "/", environ.get("QUERY_STRING", "")
            )
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or location is None:
            return problem_response(environ, start_response, HttpsRequired("plain HTTP refused"))
        return respond(start_response, 308, [("Location", location), ("Content-Length", "0")], b"")


def _quoted_path(environ: Environ) -> str:
    """The request path, percent-encoded again from the bytes the server decoded.

    PEP 3333 paths are bytes read as Latin-1, and a ``%`` in them was a ``%25``.
    """
    text = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:  # a server that decoded UTF-8 itself
        raw = text.encode("utf-8")
    return quote(raw, safe="/;:@&=+$,!~*'()")
