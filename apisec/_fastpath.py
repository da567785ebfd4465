"""The one fast path: result tuples built by keyword at the cost of ``tuple.__new__``.

Results on hot paths — a rate limit's :class:`~apisec.ratelimit.Outcome` and
:class:`~apisec.ratelimit.Decision`, a :class:`~apisec.cors.CorsDecision` —
are named tuples, and they are always built by keyword, so that a new field
can never shift the others. Called with keywords, though, a named-tuple class
costs about four times a plain function call (the type call takes CPython's
slow path), which is a quarter of a whole rate-limit hit.

:func:`tuple_builder` removes that cost once, when a module is imported: it
writes a function with the class's own parameters (names and defaults) that
hands them to ``tuple.__new__`` in field order — the very technique
``collections.namedtuple`` uses for ``__new__``, specialized once and then
run as plain code, as structlog's ``_make_stamper`` does. Hot paths call the
builder with keywords; everything else calls the class. This module is the
only place in apisec that builds a tuple positionally.
``benchmarks/bench_ratelimit.py`` and ``benchmarks/bench_cors.py`` measure
it; ``tests/test_fastpath.py`` pins every builder against its class.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

__all__ = ["tuple_builder"]

P = ParamSpec("P")
T = TypeVar("T")


@overload
def tuple_builder(cls: Callable[P, T]) -> Callable[P, T]: ...


@overload
def tuple_builder(cls: Callable[..., T], **fixed: object) -> Callable[..., T]: ...


def tuple_builder(cls: Callable[..., T], **fixed: object) -> Callable[..., T]:
    """A function that builds ``cls`` (a named tuple) from the same arguments, only faster.

    Fields given in ``fixed`` are bound once: the builder takes the others.

    >>> from typing import NamedTuple
    >>> class Point(NamedTuple):
    ...     x: int
    ...     y: int = 0
    >>> point = tuple_builder(Point)
    >>> point(x=1), point(x=1, y=2) == Point(x=1, y=2)
    (Point(x=1, y=0), True)
    >>> tuple_builder(Point, y=5)(x=1)
    Point(x=1, y=5)
    """
    tuple_class: Any = cls
    fields: tuple[str, ...] = tuple_class._fields
    defaults: dict[str, Any] = tuple_class._field_defaults
    if not all(name.isidentifier() and not keyword.iskeyword(name) for name in fields):
        raise TypeError(f"{tuple_class.__name__} is not a named tuple")
    unknown = set(fixed) - set(fields)
    if unknown:
        raise TypeError(f"{tuple_class.__name__} has no fields {sorted(unknown)}")
    parameters = [name for name in fields if name not in fixed]
    # Fixed values are looked up by their field's name, prefixed: never a parameter's name.
    namespace: dict[str, Any] = {"_tuple_new": tuple.__new__, "_cls": cls}
    namespace.update({f"_fixed_{name}": value for name, value in fixed.items()})
    values = ", ".join(f"_fixed_{name}" if name in fixed else name for name in fields)
    # Only the class's own field names reach eval, checked above.
    source = f"lambda {', '.join(parameters)}: _tuple_new(_cls, ({values},))"
    build = eval(source, namespace)  # noqa: S307
    build.__defaults__ = tuple(defaults[n] for n in parameters if n in defaults) or None
    build.__name__ = build.__qualname__ = f"build_{tuple_class.__name__}"
    build.__doc__ = f"Build a {tuple_class.__name__} by keyword (see apisec._fastpath)."
    built: Callable[..., T] = build
    return built
