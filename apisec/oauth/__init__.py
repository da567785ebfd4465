"""OAuth 2.0: authorization code with PKCE for clients, client credentials for machines.

Client side (:class:`OAuthClient`): the authorization URL with PKCE S256
always and an exact redirect URI, the callback checked against the session
(``state`` in constant time, once; ``iss`` per RFC 9207; server errors as
:class:`AuthorizationError`), and the code exchange as a :class:`TokenRequest`.

Server side (:class:`ClientCredentialsEndpoint`): a token endpoint for the
client credentials grant over API keys, answering RFC 6749 section 5 exactly
as a :class:`TokenResponse` that any adapter writes out. The password and
implicit grants are refused (``unsupported_grant_type``), as RFC 9700 says.

>>> basic_authorization("s6BhdRkqt3", "gX1fBat3bV")
'Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW'
"""

from __future__ import annotations

from apisec.oauth._client import (
    AuthorizationResponse,
    OAuthClient,
    PendingAuthorization,
    TokenRequest,
    client_credentials_request,
    parse_token_response,
)
from apisec.oauth._endpoint import (
    AsyncClientCredentialsEndpoint,
    ClientCredentialsEndpoint,
    TokenResponse,
)
from apisec.oauth._errors import AuthorizationError, InvalidCallback, OAuthError, TokenRequestError
from apisec.oauth._form import basic_authorization, parse_basic_authorization

__all__ = [
    "AsyncClientCredentialsEndpoint",
    "AuthorizationError",
    "AuthorizationResponse",
    "ClientCredentialsEndpoint",
    "InvalidCallback",
    "OAuthClient",
    "OAuthError",
    "PendingAuthorization",
    "TokenRequest",
    "TokenRequestError",
    "TokenResponse",
    "basic_authorization",
    "client_credentials_request",
    "parse_basic_authorization",
    "parse_token_response",
]
