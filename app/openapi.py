"""The OpenAPI document as client generators read it.

FastAPI's own document names operations after their paths, answers 422 with a body we never
send, describes uploads in a way openapi-python-client reads as text, and inlines the error body
into every response. This module fixes those once, for every route.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from app.auth.caller import authenticate, require_admin
from app.errors import PROBLEM_SCHEMA, Problem, problem_responses

BINARY = {"type": "string", "format": "binary"}
LOCATION = {
    "Location": {"description": "where the new resource lives", "schema": {"type": "string"}}
}
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "an API key from `modelpress api-key create`",
}
# FastAPI's default 422 body; ours is a Problem, so these schemas go unused.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def operation_id(route: APIRoute) -> str:
    """The route function's name (upload_model, create_job, ...): what a client calls."""
    return route.name


def binary_content(*media_types: str) -> dict[str, Any]:
    return {"content": {media: {"schema": BINARY} for media in media_types}}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = build_spec(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_spec(app: FastAPI) -> dict[str, Any]:
    spec = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        separate_input_output_schemas=False,  # one Recipe for reading and writing a job
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    spec["components"].setdefault("securitySchemes", {})["bearer"] = BEARER
    # Included routers keep their own routes; the contexts carry the router-level dependencies.
    routes = {
        (route.path_format, method.lower()): route
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
        for method in route.methods or ()
    }
    for path, path_item in spec.get("paths", {}).items():
        for method, operation in path_item.items():
            route = routes.get((path, method))
            _declare_problems(method, operation, _calls(route.dependant) if route else set())
    _binary_files(spec)
    return dict(sorted(spec.items()))


def _calls(dependant: Dependant) -> set[Any]:
    """Every dependency a route runs, however deep (require_admin runs authenticate)."""
    found: set[Any] = set()
    for sub in dependant.dependencies:
        found |= {sub.call, *_calls(sub)}
    return found


def _declare_problems(method: str, operation: dict[str, Any], calls: set[Any]) -> None:
    responses = operation.setdefault("responses", {})
    if "422" in responses:
        responses["422"] = {"description": "Problem details (RFC 9457)", **PROBLEM_SCHEMA}
    if "requestBody" in operation:
        responses.setdefault(
            "400", {"description": "Unparseable body (RFC 9457)", **PROBLEM_SCHEMA}
        )
    expected = []
    if authenticate in calls:
        # No per-operation `security` yet: schemathesis' negative mode would strip the key the
        # tests send and call the request invalid (tests/api/test_schemathesis.py).
        expected.append(401)
    if require_admin in calls:
        expected.append(403)
    if method == "post" and "requestBody" in operation:
        expected.append(413)  # every route has a body limit, uploads a larger one
    for status, response in problem_responses(*expected).items():
        responses.setdefault(str(status), response)
    operation["responses"] = dict(sorted(responses.items()))


def _binary_files(node: Any) -> None:
    """Uploads as ``format: binary``, the OpenAPI 3.0 spelling generators turn into a file."""
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("contentMediaType"):
            del node["contentMediaType"]
            node["format"] = "binary"
        for value in node.values():
            _binary_files(value)
    elif isinstance(node, list):
        for value in node:
            _binary_files(value)
