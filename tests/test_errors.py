"""The error tree: statuses, client-safe problems, and no internal detail on 5xx."""

from __future__ import annotations

import pytest

import apisec
from apisec.errors import (
    ApiSecError,
    AuthenticationError,
    ClientError,
    ConfigurationError,
    MalformedProblem,
    PayloadTooLarge,
    PermissionDenied,
    StoreError,
    ValidationError,
)
from apisec.problems import FieldError

TREE = {
    ConfigurationError: (ApiSecError, 500),
    StoreError: (ApiSecError, 503),
    MalformedProblem: (ApiSecError, 502),
    ClientError: (ApiSecError, 400),
    AuthenticationError: (ClientError, 401),
    PermissionDenied: (ClientError, 403),
    PayloadTooLarge: (ClientError, 413),
    ValidationError: (ClientError, 422),
}


@pytest.mark.parametrize(("cls", "parent_and_status"), TREE.items())
def test_tree_shape_and_statuses(
    cls: type[ApiSecError], parent_and_status: tuple[type[ApiSecError], int]
) -> None:
    """Each error sits under its documented parent with its documented status."""
    parent, status = parent_and_status
    assert issubclass(cls, parent)
    assert cls.status == status


def test_tree_is_drawn_in_the_module_docstring() -> None:
    """The docstring's drawing names every error of the module."""
    doc = apisec.errors.__doc__ or ""
    for name in apisec.errors.__all__:
        assert name in doc


def test_configuration_error_is_also_a_value_error() -> None:
    """Callers catching ValueError around construction still catch bad configuration."""
    assert issubclass(ConfigurationError, ValueError)


def test_client_problem_shows_the_safe_detail_never_the_message() -> None:
    """The server-side message stays out of the client problem."""
    err = AuthenticationError("signature mismatch for kid k1 (secret abc)")
    body = err.to_problem().to_dict()
    assert body == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "Valid credentials are required.",
    }
    assert "signature" not in err.to_problem().to_json().decode()
    assert str(err) == "signature mismatch for kid k1 (secret abc)"


def test_explicit_detail_and_extensions_reach_4xx_problems() -> None:
    """A chosen client detail and extensions are rendered for client errors."""
    err = PermissionDenied(
        "user 7 lacks admin",
        detail="Admin scope required.",
        extensions={"required_scopes": ["admin"]},
    )
    body = err.to_problem().to_dict()
    assert body["detail"] == "Admin scope required."
    assert body["required_scopes"] == ["admin"]


@pytest.mark.parametrize("cls", [ApiSecError, ConfigurationError, StoreError, MalformedProblem])
def test_server_errors_carry_no_detail_or_extensions(cls: type[ApiSecError]) -> None:
    """5xx problems hold only type, title and status, whatever was passed."""
    err = cls(
        "redis at 10.0.0.5:6379 refused AUTH",
        detail="internal: host 10.0.0.5",
        extensions={"host_name": "10.0.0.5"},
    )
    body = err.to_problem().to_dict()
    assert set(body) == {"type", "title", "status"}
    assert "10.0.0.5" not in err.to_problem().to_json().decode()


def test_type_base_gives_specific_types_and_titles() -> None:
    """With a type base, the type is base+slug and the title the class's own."""
    problem = StoreError("x").to_problem(type_base="https://errors.example.com/", instance="/r/1")
    assert problem.to_dict() == {
        "type": "https://errors.example.com/store-unavailable",
        "title": "Storage backend unavailable",
        "status": 503,
        "instance": "/r/1",
    }


def test_error_headers_are_carried_for_the_adapter() -> None:
    """Headers given to an error come back from headers()."""
    err = AuthenticationError(headers=[("WWW-Authenticate", 'Bearer realm="api"')])
    assert err.headers == [("WWW-Authenticate", 'Bearer realm="api"')]
    assert ClientError().headers == []


def test_validation_error_renders_every_field_as_a_422() -> None:
    """ValidationError carries all field errors into a validation problem."""
    err = ValidationError(
        [
            FieldError("name", "too long", "max_length"),
            {"field": "age", "message": "m", "code": "c"},
        ]
    )
    body = err.to_problem().to_dict()
    assert body["status"] == 422
    assert [e["field"] for e in body["errors"]] == ["name", "age"]
    typed = err.to_problem(type_base="https://e.example/").to_dict()
    assert typed["type"] == "https://e.example/validation-failed"
    assert typed["title"] == "Validation failed"


def test_validation_error_needs_a_field() -> None:
    """An empty validation error is a programming mistake."""
    with pytest.raises(ConfigurationError):
        ValidationError([])


def test_default_message_is_the_class_name() -> None:
    """An error raised without a message still says what it is."""
    assert str(PayloadTooLarge()) == "PayloadTooLarge"


def test_errors_reach_problems_through_one_seam_only() -> None:
    """apisec.errors imports apisec.problems in ApiSecError.to_problem and nowhere else."""
    import ast
    import inspect

    import apisec.errors

    tree = ast.parse(inspect.getsource(apisec.errors))
    seams = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.module == "apisec.problems":
                    seams.append(function.name)
    assert seams == ["to_problem"]


def test_validation_error_carries_its_fields_as_data() -> None:
    """The field errors are data on the error; its problem equals validation_problem's."""
    from apisec.problems import validation_problem

    err = ValidationError([{"field": "age", "message": "must be positive", "code": "min_value"}])
    assert err.errors == (FieldError("age", "must be positive", "min_value"),)
    assert err.to_problem() == validation_problem(err.errors)
    assert err.to_problem(type_base="https://e.example/") == validation_problem(
        err.errors, type="https://e.example/validation-failed", title="Validation failed"
    )
