"""Input validation at the boundary: strict JSON, attrs schemas, pagination, allowlists.

See :mod:`apisec.validation._schema` for the schema helpers.
"""

from __future__ import annotations

from apisec.errors import ValidationError
from apisec.validation._bridges import from_msgspec, from_pydantic
from apisec.validation._json import MalformedJSON, UnsupportedMediaType, parse_json
from apisec.validation._pagination import InvalidCursor, Page, Paginator, only
from apisec.validation._schema import (
    boolean,
    enum_of,
    integer,
    list_of,
    nested,
    number,
    string,
    url,
    validate,
)

__all__ = [
    "InvalidCursor",
    "MalformedJSON",
    "Page",
    "Paginator",
    "UnsupportedMediaType",
    "ValidationError",
    "boolean",
    "enum_of",
    "from_msgspec",
    "from_pydantic",
    "integer",
    "list_of",
    "nested",
    "number",
    "only",
    "parse_json",
    "string",
    "url",
    "validate",
]
