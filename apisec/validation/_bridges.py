"""Turn pydantic's and msgspec's validation errors into apisec FieldErrors.

Neither library is a dependency: these functions only read the exception
objects handed to them.
"""

from __future__ import annotations

import re
from typing import Any

from apisec.errors import ValidationError
from apisec.problems import FieldError

__all__ = ["from_msgspec", "from_pydantic"]

_MSGSPEC_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MSGSPEC_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[\"((?:[^\"\\]|\\.)*)\"\]")


def from_pydantic(exc: Any) -> ValidationError:
    """A :class:`ValidationError` from a ``pydantic.ValidationError``.

    ``loc`` tuples become dotted paths (``items.3.name``), ``type`` the code.
    """
    errors = []
    for item in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in item.get("loc", ())) or "$"
        code = str(item.get("type", "invalid"))
        errors.append(FieldError(path, str(item.get("msg", "is invalid")), code))
    return ValidationError(errors or [FieldError("$", "is invalid", "invalid")])


def from_msgspec(exc: BaseException) -> ValidationError:
    """A :class:`ValidationError` from a ``msgspec.ValidationError``.

    msgspec reports one error as text (``Expected `int`, got `str` - at
    `$.items[3].name```); the path becomes ``items.3.name``.
    """
    message = str(exc)
    match = _MSGSPEC_PATH.search(message)
    path = "$"
    if match is not None:
        parts = [
            m.group(1) or m.group(2) or m.group(3) for m in _MSGSPEC_SEGMENT.finditer(match["path"])
        ]
        path = ".".join(parts) or "$"
        message = message[: match.start()]
    code = "type" if message.startswith("Expected") else "invalid"
    if message.startswith("Object missing required field"):
        code = "required"
        field = message.split("`")[1] if "`" in message else ""
        path = f"{path}.{field}" if path != "$" else field
    elif message.startswith("Object contains unknown field"):
        code = "unknown_field"
        field = message.split("`")[1] if "`" in message else ""
        path = f"{path}.{field}" if path != "$" else field
    return ValidationError([FieldError(path, message, code)])
