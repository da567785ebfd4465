"""Schemas as attrs classes: validate untrusted data, report every bad field at once.

>>> import attrs
>>> @attrs.define(kw_only=True)
... class NewUser:
...     name: str = string(min_length=1, max_length=50)
...     age: int = integer(min=0, max=150)
...     tags: list[str] = list_of(string(max_length=20), max_items=5, default=())
>>> validate(NewUser, {"name": "  Ada ", "age": 36})
NewUser(name='Ada', age=36, tags=())
>>> try:
...     validate(NewUser, {"name": "", "age": "36", "admin": True})
... except ValidationError as err:
...     [(e.field, e.code) for e in err.errors]
[('admin', 'unknown_field'), ('name', 'too_short'), ('age', 'type')]

Types are checked without silent coercion (``"36"`` is not an int) unless
``coerce=True`` (for query strings). Strings are trimmed and NFC-normalized
by default and refuse control characters. Unknown fields are refused.
Fields without a helper are checked from their annotation (``str``,
``int``, ``float``, ``bool``, ``list[X]``, ``X | None``, enums, nested attrs
classes).
"""

from __future__ import annotations

import enum
import math
import re
import types
import typing
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from apisec.errors import ConfigurationError, ValidationError
from apisec.problems import FieldError
from apisec.ssrf import UnsafeURL, check_url

__all__ = [
    "boolean",
    "enum_of",
    "integer",
    "list_of",
    "nested",
    "number",
    "string",
    "url",
    "validate",
]

_KEY = "apisec.validation"
_INVALID = object()
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _Context:
    __slots__ = ("coerce", "errors")

    def __init__(self, coerce: bool) -> None:
        self.errors: list[FieldError] = []
        self.coerce = coerce

    def fail(self, path: str, message: str, code: str) -> object:
        self.errors.append(FieldError(path or "$", message, code))
        return _INVALID


class Spec:
    """A field rule; the helpers below build them."""

    nullable: bool = False

    def check(self, value: Any, path: str, ctx: _Context) -> Any:  # pragma: no cover
        raise NotImplementedError


@attrs.frozen
class _String(Spec):
    min_length: int = 0
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    trim: bool = True
    normalize: str | None = "NFC"
    choices: frozenset[str] | None = None
    allow_control: bool = False
    nullable: bool = False

    def check(self, value: Any, path: str, ctx: _Context) -> Any:
        if not isinstance(value, str):
            return ctx.fail(path, "must be a string", "type")
        if self.normalize:
            value = unicodedata.normalize(self.normalize, value)  # type: ignore[arg-type]
        if self.trim:
            value = value.strip()
        if not self.allow_control and _CONTROL.search(value):
            return ctx.fail(path, "must not contain control characters", "invalid_characters")
        if len(value) < self.min_length:
            return ctx.fail(path, f"must have at least {self.min_length} characters", "too_short")
        if self.max_length is not None and len(value) > self.max_length:
            return ctx.fail(path, f"must have at most {self.max_length} characters", "too_long")
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            return ctx.fail(path, "has an invalid format", "pattern")
        if self.choices is not None and value not in self.choices:
            return ctx.fail(path, f"must be one of {sorted(self.choices)}", "not_in_choices")
        return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@attrs.frozen
class _Number(Spec):
    integral: bool
    min: float | None = None
    max: float | None = None
    nullable: bool = False

    def check(self, value: Any, path: str, ctx: _Context) -> Any:
        if ctx.coerce and isinstance(value, str):
            try:
                value = int(value) if self.integral else float(value)
            except ValueError:
                return ctx.fail(
                    path, f"must be {'an integer' if self.integral else 'a number'}", "type"
                )
        if self.integral and not _is_int(value):
            return ctx.fail(path, "must be an integer", "type")
        if not self.integral and (
            not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value)
        ):
            return ctx.fail(path, "must be a finite number", "type")
        if self.min is not None and value < self.min:
            return ctx.fail(path, f"must be at least {self.min:g}", "too_small")
        if self.max is not None and value > self.max:
            return ctx.fail(path, f"must be at most {self.max:g}", "too_large")
        return value


@attrs.frozen
class _Boolean(Spec):
    nullable: bool = False

    def check(self, value: Any, path: str, ctx: _Context) -> Any:
        if ctx.coerce and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            return ctx.fail(path, "must be true or false", "type")
        return value


@attrs.frozen
class _Enum(Spec):
    choices: type[enum.Enum]
    nullable: bool = False

    def check(self, value: Any, path: str, ctx: _Context) -> Any:
        try:
            return self.choices(value)
        except (ValueError, TypeError):
            allowed = [m.value for m in self.choices]
            return ctx.fail(path, f"must be one of {allowed}", "not_in_choices")


@attrs.frozen
class _List(Spec):
    item: Spec
    min_items: int = 0
    max_items: int | None = None
    nullable: bool = False

    def check(self, value: Any, path: str, ctx: _Context) -> Any:
        if not isinstance(value, list):
            return ctx.fail(path, "must be a list", "type")
        if len(value) < self.min_items:
            return ctx.fail(path, f"must have at least {self.min_items} items", "too_few_items")
        if self.max_items is not None and len(value) > self.max_items:
            return ctx.fail(path, f"must have at most {self.max_items} items", "too_many_items")
        out = [_check(self.item, item, f"{path}.{index}", ctx) for index, item in enumerate(value)]
        return _INVALID if any(v is _INVALID for v in out) else out


@attrs.frozen
class _Nested(Spec):
    schema: type[Any]
    nullable: bool = False

    def check(self, value: Any, path: str, ctx: _Context) -> Any:
        return _validate_object(self.schema, value, path, ctx, allow_unknown=False)


@attrs.frozen
class _Url(Spec):
    schemes: tuple[str, ...] = ("https",)
    ssrf: bool = True
    resolve: bool = False
    max_length: int = 2048
    nullable: bool = False

    def check(self, value: Any, path: str, ctx: _Context) -> Any:
        if not isinstance(value, str):
            return ctx.fail(path, "must be a URL string", "type")
        if len(value) > self.max_length:
            return ctx.fail(path, f"must have at most {self.max_length} characters", "too_long")
        try:
            check_url(value, self.schemes, resolve=self.resolve)
        except UnsafeURL as exc:
            if not self.ssrf and exc.reason not in (
                "scheme",
                "invalid_url",
                "invalid_host",
                "credentials",
                "port",
            ):
                return value
            return ctx.fail(path, "must be a public http(s) URL", "unsafe_url")
        return value


def _check(spec: Spec, value: Any, path: str, ctx: _Context) -> Any:
    if value is None:
        if spec.nullable:
            return None
        return ctx.fail(path, "must not be null", "type")
    return spec.check(value, path, ctx)


# --- field helpers -------------------------------------------------------------------


def _field(spec: Spec, default: Any) -> Any:
    if isinstance(default, (list, dict, set)):
        raise ConfigurationError("use a tuple or None as default: mutable defaults are shared")
    return attrs.field(default=default, metadata={_KEY: spec})


def string(
    *,
    min_length: int = 0,
    max_length: int | None = None,
    pattern: str | None = None,
    trim: bool = True,
    normalize: str | None = "NFC",
    choices: Iterable[str] | None = None,
    allow_control: bool = False,
    nullable: bool = False,
    default: Any = attrs.NOTHING,
) -> Any:
    """A string field: trimmed and NFC-normalized, lengths, a full-match pattern, choices."""
    if normalize not in (None, "NFC", "NFKC", "NFD", "NFKD"):
        raise ConfigurationError("normalize must be NFC, NFKC, NFD, NFKD or None")
    try:
        compiled = None if pattern is None else re.compile(pattern)
    except re.error as exc:
        raise ConfigurationError(f"pattern does not compile: {exc}") from exc
    spec = _String(
        min_length=min_length,
        max_length=max_length,
        pattern=compiled,
        trim=trim,
        normalize=normalize,
        choices=None if choices is None else frozenset(choices),
        allow_control=allow_control,
        nullable=nullable,
    )
    return _field(spec, default)


def integer(
    *,
    min: float | None = None,
    max: float | None = None,
    nullable: bool = False,
    default: Any = attrs.NOTHING,
) -> Any:
    """An int field (booleans and floats are refused), with bounds."""
    return _field(_Number(integral=True, min=min, max=max, nullable=nullable), default)


def number(
    *,
    min: float | None = None,
    max: float | None = None,
    nullable: bool = False,
    default: Any = attrs.NOTHING,
) -> Any:
    """A finite int or float field, with bounds."""
    return _field(_Number(integral=False, min=min, max=max, nullable=nullable), default)


def boolean(*, nullable: bool = False, default: Any = attrs.NOTHING) -> Any:
    """A true/false field (no 0/1, no "yes")."""
    return _field(_Boolean(nullable=nullable), default)


def enum_of(
    choices: type[enum.Enum], *, nullable: bool = False, default: Any = attrs.NOTHING
) -> Any:
    """A field holding one of an Enum's values; the validated value is the member."""
    return _field(_Enum(choices, nullable=nullable), default)


def list_of(
    item: Any,
    *,
    min_items: int = 0,
    max_items: int | None = None,
    nullable: bool = False,
    default: Any = attrs.NOTHING,
) -> Any:
    """A list field; ``item`` is another helper (``string(...)``) or a type (``int``)."""
    return _field(
        _List(_item_spec(item), min_items=min_items, max_items=max_items, nullable=nullable),
        default,
    )


def nested(schema: type[Any], *, nullable: bool = False, default: Any = attrs.NOTHING) -> Any:
    """A field holding an object validated by another attrs schema."""
    return _field(_Nested(schema, nullable=nullable), default)


def url(
    *,
    schemes: Iterable[str] = ("https",),
    ssrf: bool = True,
    resolve: bool = False,
    nullable: bool = False,
    default: Any = attrs.NOTHING,
) -> Any:
    """A URL field, checked by the SSRF guard (internal targets refused) unless ``ssrf=False``."""
    spec = _Url(schemes=tuple(schemes), ssrf=ssrf, resolve=resolve, nullable=nullable)
    return _field(spec, default)


def _item_spec(item: Any) -> Spec:
    if isinstance(item, attrs.Attribute):  # pragma: no cover - defensive
        item = item.metadata.get(_KEY)
    metadata = getattr(item, "metadata", None)
    if isinstance(metadata, Mapping) and _KEY in metadata:
        spec: Spec = metadata[_KEY]
        return spec
    if isinstance(item, Spec):
        return item
    return _spec_from_type(item)


def _spec_from_type(annotation: Any) -> Spec:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1 and len(typing.get_args(annotation)) == 2:
            return attrs.evolve(_spec_from_type(members[0]), nullable=True)  # type: ignore[misc]
    if origin in (list, typing.List) or annotation is list:  # noqa: UP006
        args = typing.get_args(annotation)
        if not args:
            raise ConfigurationError("list fields need an item type: list[str]")
        return _List(_spec_from_type(args[0]))
    if annotation is str:
        return _String()
    if annotation is bool:
        return _Boolean()
    if annotation is int:
        return _Number(integral=True)
    if annotation is float:
        return _Number(integral=False)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _Enum(annotation)
    if isinstance(annotation, type) and attrs.has(annotation):
        return _Nested(annotation)
    raise ConfigurationError(f"no validation rule for type {annotation!r}; use a field helper")


# --- validation ----------------------------------------------------------------------

_Plan = list[tuple[str, Spec, Any]]
_PLANS: dict[type[Any], _Plan] = {}


def _plan(schema: type[Any]) -> _Plan:
    plan = _PLANS.get(schema)
    if plan is not None:
        return plan
    if not (isinstance(schema, type) and attrs.has(schema)):
        raise ConfigurationError(f"{schema!r} is not an attrs class")
    hints = typing.get_type_hints(schema)
    plan = []
    for field in attrs.fields(schema):
        if not field.init:
            continue
        spec = field.metadata.get(_KEY)
        if spec is None:
            spec = _spec_from_type(hints.get(field.name, field.type))
        name = field.alias or field.name
        plan.append((name, spec, field.default))
    _PLANS[schema] = plan
    return plan


def _validate_object(
    schema: type[Any], data: Any, path: str, ctx: _Context, allow_unknown: bool
) -> Any:
    plan = _plan(schema)
    if not isinstance(data, Mapping):
        return ctx.fail(path, "must be an object", "not_object")
    before = len(ctx.errors)
    known = {name for name, _, _ in plan}
    if not allow_unknown:
        for key in data:
            if key not in known:
                ctx.fail(_join(path, str(key)[:64]), "is not an allowed field", "unknown_field")
    values: dict[str, Any] = {}
    for name, spec, default in plan:
        field_path = _join(path, name)
        if name not in data:
            if default is attrs.NOTHING:
                ctx.fail(field_path, "is required", "required")
            continue
        result = _check(spec, data[name], field_path, ctx)
        if result is not _INVALID:
            values[name] = result
    if len(ctx.errors) > before:
        return _INVALID
    try:
        return schema(**values)
    except (TypeError, ValueError) as exc:  # the schema's own attrs validators
        return ctx.fail(path, str(exc)[:200] or "is invalid", "invalid")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate(
    schema: type[Any],
    data: Any,
    *,
    allow_unknown: bool = False,
    coerce: bool = False,
) -> Any:
    """Validate ``data`` against the attrs class ``schema``; return an instance.

    Raises:
        ValidationError: with a :class:`FieldError` for every failing field
            (a 422 problem through ``err.to_problem()``).
    """
    ctx = _Context(coerce)
    result = _validate_object(schema, data, "", ctx, allow_unknown)
    if ctx.errors:
        raise ValidationError(ctx.errors)
    return result
