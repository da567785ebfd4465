"""The one fast path: keyword builders of result tuples, pinned against their classes."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

import apisec
from apisec import cors
from apisec._fastpath import tuple_builder
from apisec.ratelimit import (
    Decision,
    FixedWindow,
    LimitRequest,
    MemoryStore,
    Outcome,
    RateLimiter,
    _algorithms,
    _limiter,
)
from apisec.testing import FakeClock
from apisec.tokens import _jws
from apisec.webhooks import _schemes

# One distinct value per field, so a value landing in the wrong field shows.
SAMPLES: dict[type, dict[str, Any]] = {
    Outcome: {
        "allowed": True,
        "remaining": 3,
        "reset_after": 4.5,
        "retry_after": 6.5,
        "queue_delay": 7.5,
    },
    Decision: {
        "allowed": False,
        "limit": 10,
        "remaining": 2,
        "reset_after": 3.5,
        "retry_after": 4.5,
        "policy": "p",
        "window": 60.0,
        "policies": (("p", 10, 60.0),),
        "queue_delay": 0.25,
        "degraded": True,
        "reset_format": "epoch",
        "decided_at": 1234.5,
    },
    cors.CorsDecision: {
        "allowed": True,
        "is_preflight": True,
        "headers": [("A", "b")],
        "reason": "r",
    },
    LimitRequest: {"key": "k", "algorithm": FixedWindow(1, 1), "cost": 2},
    _schemes.Delivery: {
        "msg_id": "m",
        "timestamp": 5,
        "signatures": (("v1", "s"),),
        "prefix": b"p",
    },
    _jws.Compact: {
        "header": {"alg": "HS256"},
        "payload": b"x",
        "signing_input": b"y",
        "signature": b"z",
    },
}

BUILDERS = [
    (Outcome, _algorithms._build_outcome),
    (cors.CorsDecision, cors._build_decision),
    (LimitRequest, _limiter._build_request),
    (_schemes.Delivery, _schemes._build_delivery),
    (_jws.Compact, _jws._build_compact),
]


class TestTupleBuilder:
    @pytest.mark.parametrize(("cls", "builder"), BUILDERS, ids=lambda v: getattr(v, "__name__", ""))
    def test_each_builder_builds_its_class_field_for_field(self, cls: Any, builder: Any) -> None:
        """Every hot-path builder gives exactly what the class gives for the same keywords."""
        sample = SAMPLES[cls]
        assert set(sample) == set(cls._fields)
        built = builder(**sample)
        assert type(built) is cls
        assert built._asdict() == cls(**sample)._asdict()

    @pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
    def test_the_signature_is_the_class_signature(self, cls: Any) -> None:
        """Same names, order and defaults as the class: a new field reaches every builder."""

        def shape(fn: Any) -> list[tuple[str, Any, Any]]:
            return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

        assert shape(tuple_builder(cls)) == shape(cls)

    def test_defaults_apply(self) -> None:
        """Omitted fields take the class's defaults."""
        build = tuple_builder(Outcome)
        assert build(allowed=True, remaining=1, reset_after=2.0, retry_after=None) == Outcome(
            allowed=True, remaining=1, reset_after=2.0, retry_after=None
        )

    def test_fixed_fields_are_bound(self) -> None:
        """A specialized builder takes only the other fields and fills the fixed ones."""
        fixed = {k: v for k, v in SAMPLES[Decision].items() if k in ("limit", "policy", "window")}
        build = tuple_builder(Decision, **fixed)
        rest = {k: v for k, v in SAMPLES[Decision].items() if k not in fixed}
        assert build(**rest) == Decision(**SAMPLES[Decision])
        with pytest.raises(TypeError):
            build(**SAMPLES[Decision])

    def test_unknown_fixed_fields_and_plain_classes_are_refused(self) -> None:
        """Only a named tuple's own fields can be bound."""
        with pytest.raises(TypeError):
            tuple_builder(Outcome, nope=1)
        with pytest.raises(AttributeError):
            tuple_builder(dict)

    def test_the_one_limit_decision_is_pinned(self) -> None:
        """The limiter's specialized builder fills the limit's fields from the algorithm."""
        limiter = RateLimiter(FixedWindow(5, 60, name="per-minute"), clock=FakeClock(0))
        decision = limiter.hit("k")
        assert decision == Decision(
            allowed=True,
            limit=5,
            remaining=4,
            reset_after=60.0,
            retry_after=None,
            policy="per-minute",
            window=60.0,
            policies=(("per-minute", 5, 60.0),),
            queue_delay=None,
            degraded=False,
            reset_format="delta",
            decided_at=0.0,
        )
        assert limiter._one is not None and isinstance(limiter.store, MemoryStore)


def test_no_tuple_is_built_positionally_outside_the_fast_path() -> None:
    """``tuple.__new__`` appears in apisec/_fastpath.py and nowhere else."""
    root = Path(apisec.__file__).parent
    users = sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "tuple.__new__" in path.read_text(encoding="utf-8")
    )
    assert users == ["_fastpath.py"]
