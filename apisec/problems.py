"""RFC 9457 problem details (which obsoletes RFC 7807).

A :class:`Problem` is an immutable, already-validated error body::

    >>> p = Problem(403, detail="Your current balance is 30, but that costs 50.",
    ...             type="https://example.com/probs/out-of-credit",
    ...             title="You do not have enough credit.",
    ...             extensions={"balance": 30})
    >>> p.to_dict()["balance"]
    30
    >>> Problem.media_type
    'application/problem+json'

Invalid problems cannot be built: the status must be 100-599, ``type`` and
``instance`` must be URI references, extension names must follow the RFC's
advice (a letter, then letters, digits or ``_``; three characters at least)
and may not shadow a standard member, and every extension value must be
plain JSON. Problems received from elsewhere go through the lenient
:meth:`Problem.from_dict`, which ignores members of the wrong type as
section 3.1 of the RFC requires.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, ClassVar, TypeGuard

import attrs

from apisec.errors import ConfigurationError, FieldError, MalformedProblem

__all__ = [
    "MEDIA_TYPE",
    "FieldError",
    "Problem",
    "reason_phrase",
    "validation_problem",
]

MEDIA_TYPE = "application/problem+json"

#: The standard members; extensions may not reuse these names.
STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})

_EXTENSION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,}")
# A URI reference for our purposes: printable ASCII without spaces, quotes or
# angle brackets (RFC 3986 never allows those unescaped). Parsing stays lenient
# beyond that on purpose: problem types are opaque identifiers.
_URI_REFERENCE = re.compile(r"[!#-;=?-\[\]_a-z~]+", re.ASCII | re.IGNORECASE)
_MAX_DOCUMENT_BYTES = 64 * 1024

# RFC 9110 names; older Pythons still carry the RFC 7231 phrases for these.
_RFC9110_PHRASES = {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}
_CLASS_PHRASES = {
    1: "Informational",
    2: "Success",
    3: "Redirection",
    4: "Client Error",
    5: "Server Error",
}


def reason_phrase(status: int) -> str:
    """The RFC 9110 reason phrase for ``status`` (a class phrase if unregistered).

    >>> reason_phrase(422)
    'Unprocessable Content'
    >>> reason_phrase(499)
    'Client Error'
    """
    if status in _RFC9110_PHRASES:
        return _RFC9110_PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _CLASS_PHRASES.get(status // 100, "Unknown")


def _is_status(value: object) -> TypeGuard[int]:
    return type(value) is int and 100 <= value <= 599


def _is_uri_reference(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _URI_REFERENCE.fullmatch(value) is not None


def _is_plain_json(value: object, depth: int = 0) -> bool:
    """True for values that JSON represents exactly (no NaN, no custom objects)."""
    if depth > 32:
        return False
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_plain_json(v, depth + 1) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_plain_json(v, depth + 1) for k, v in value.items())
    return False


def _check_status(_: object, __: attrs.Attribute[int], value: int) -> None:
    if not _is_status(value):
        raise ConfigurationError(f"problem status must be an int in 100-599, got {value!r}")


def _check_optional_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"problem {attribute.name} must be a string or None")


def _check_uri(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name == "instance":
        return
    if not _is_uri_reference(value):
        raise ConfigurationError(f"problem {attribute.name} must be a URI reference, got {value!r}")


def _check_extension_name(name: object) -> None:
    if not isinstance(name, str) or _EXTENSION_NAME.fullmatch(name) is None:
        raise ConfigurationError(
            f"problem extension name {name!r} must start with a letter and use only"
            " letters, digits and '_' (at least three characters), as RFC 9457 advises"
        )
    if name in STANDARD_MEMBERS:
        raise ConfigurationError(f"problem extension {name!r} would shadow a standard member")


def _freeze_extensions(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ConfigurationError("problem extensions must be a mapping")
    for name, member in value.items():
        _check_extension_name(name)
        if not _is_plain_json(member):
            raise ConfigurationError(f"problem extension {name!r} is not plain JSON")
    # A JSON round trip deep-copies, so later changes to the caller's lists
    # cannot alter an immutable problem.
    return MappingProxyType(json.loads(json.dumps(dict(value))))


@attrs.frozen(eq=False)
class Problem:
    """An RFC 9457 problem details object.

    Args:
        status: the HTTP status code (100-599).
        title: a short summary; defaults to the status's reason phrase.
        detail: an explanation of this occurrence, safe for the client.
        type: a URI reference identifying the problem type.
        instance: a URI reference identifying this occurrence.
        extensions: extra members, plain JSON only.
    """

    media_type: ClassVar[str] = MEDIA_TYPE

    status: int = attrs.field(validator=_check_status)
    title: str | None = attrs.field(default=None, validator=_check_optional_text)
    detail: str | None = attrs.field(default=None, validator=_check_optional_text)
    type: str = attrs.field(default="about:blank", validator=_check_uri)
    instance: str | None = attrs.field(default=None, validator=_check_uri)
    extensions: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_extensions)

    def __attrs_post_init__(self) -> None:
        if self.title is None:
            object.__setattr__(self, "title", reason_phrase(self.status))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def to_dict(self) -> dict[str, Any]:
        """The problem as a new JSON-ready dict (standard members first)."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            body["detail"] = self.detail
        if self.instance is not None:
            body["instance"] = self.instance
        body.update(json.loads(json.dumps(dict(self.extensions))))
        return body

    def to_json(self) -> bytes:
        """The problem serialized as compact UTF-8 JSON."""
        return json.dumps(
            self.to_dict(), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, fallback_status: int = 500) -> Problem:
        """Read a problem received from elsewhere, defensively.

        Members of the wrong type are ignored, as RFC 9457 section 3.1
        requires, and so are extensions that are not plain JSON or whose
        names do not follow the RFC's advice. The ``status`` member is only
        advisory: when it is absent or unusable, ``fallback_status`` (the
        status of the HTTP response that carried the document) is used.

        Raises:
            MalformedProblem: ``data`` is not a mapping at all.
        """
        if not isinstance(data, Mapping):
            raise MalformedProblem("a problem document must be a JSON object")
        if not _is_status(fallback_status):
            raise ConfigurationError("fallback_status must be an int in 100-599")
        status = data.get("status")
        type_ = data.get("type")
        instance = data.get("instance")
        extensions = {
            name: value
            for name, value in data.items()
            if isinstance(name, str)
            and name not in STANDARD_MEMBERS
            and _EXTENSION_NAME.fullmatch(name)
            and _is_plain_json(value)
        }
        return cls(
            status=status if _is_status(status) else fallback_status,
            title=_text_or_none(data.get("title")),
            detail=_text_or_none(data.get("detail")),
            type=type_ if _is_uri_reference(type_) else "about:blank",
            instance=instance if _is_uri_reference(instance) else None,
            extensions=extensions,
        )

    @classmethod
    def from_json(cls, raw: bytes | str, *, fallback_status: int = 500) -> Problem:
        """Parse a problem document (at most 64 KiB) with :meth:`from_dict`.

        Raises:
            MalformedProblem: too large, not JSON, or not a JSON object.
        """
        if len(raw) > _MAX_DOCUMENT_BYTES:
            raise MalformedProblem("problem document is larger than 64 KiB")
        try:
            data = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise MalformedProblem("problem document is not valid JSON") from exc
        return cls.from_dict(data, fallback_status=fallback_status)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def validation_problem(
    errors: Iterable[FieldError | Mapping[str, str]],
    *,
    detail: str | None = "The request contains invalid fields.",
    title: str | None = None,
    type: str = "about:blank",
    instance: str | None = None,
) -> Problem:
    """A 422 problem listing every failing field in its ``errors`` extension.

    >>> validation_problem([FieldError("age", "must be positive", "min_value")]).to_dict()
    ... # doctest: +NORMALIZE_WHITESPACE
    {'type': 'about:blank', 'title': 'Unprocessable Content', 'status': 422,
     'detail': 'The request contains invalid fields.',
     'errors': [{'field': 'age', 'message': 'must be positive', 'code': 'min_value'}]}
    """
    items = [FieldError.coerce(e).to_dict() for e in errors]
    if not items:
        raise ConfigurationError("a validation problem needs at least one field error")
    return Problem(
        status=422,
        title=title,
        detail=detail,
        type=type,
        instance=instance,
        extensions={"errors": items},
    )
