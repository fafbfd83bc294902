"""Errors that know their HTTP status, rendered everywhere as RFC 9457 problem details."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import Scope

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("modelpress.api")


class AppError(Exception):
    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"
    retry_after_s: int | None = None  # set on conditions that clear by themselves

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}  # response headers the status calls for


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class ModelNotFound(NotFound):
    slug, title = "model-not-found", "Model not found"


class JobNotFound(NotFound):
    slug, title = "job-not-found", "Job not found"


class DatasetNotFound(NotFound):
    slug, title = "dataset-not-found", "Dataset not found"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class ModelInUse(Conflict):
    slug, title = "model-in-use", "Model in use"


class ModelNotReady(Conflict):
    slug, title = "model-not-ready", "Model is still being inspected"
    retry_after_s = 2


class DatasetNotReady(Conflict):
    slug, title = "dataset-not-ready", "Dataset is still being inspected"
    retry_after_s = 2


class JobStateConflict(Conflict):
    slug, title = "job-state-conflict", "Job is not in a state that allows this"


class InvalidUpload(AppError):
    status, slug, title = 422, "invalid-upload", "Invalid upload"


class InvalidDataset(AppError):
    status, slug, title = 422, "invalid-dataset", "Dataset does not fit the model"


class UnsupportedModel(AppError):
    status, slug, title = 422, "unsupported-model", "Unsupported model"


class InvalidRecipe(AppError):
    status, slug, title = 422, "invalid-recipe", "Invalid recipe"


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Upload too large"


def too_large_detail(scope: Scope) -> str:
    """The body limit in force for this request's route (set by FastAPI's max_body_size)."""
    limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    if limit is None:
        return "the request body is too large"
    return f"the request body exceeds this route's limit of {limit} bytes"


def problem(
    status: int, slug: str, title: str, detail: str, instance: str, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """The one error body (RFC 9457). Errors may add their own keys beside these."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="/problems/<slug>: what went wrong, stable for programs")
    title: str
    status: int
    detail: str = Field(description="what went wrong with this request, for people")
    instance: str = Field(description="the request path")
    errors: list[ValidationIssue] | None = Field(
        None, description="every invalid field (validation errors only)"
    )


# Conditions that can clear by themselves say when to try again.
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying, sent when waiting will help",
        "schema": {"type": "integer"},
    }
}
PROBLEM_SCHEMA = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": "Problem details (RFC 9457)",
            **PROBLEM_SCHEMA,
            **({"headers": _RETRY_AFTER} if status in (409, 429, 503) else {}),
        }
        for status in statuses
    }


def install_error_handlers(app: FastAPI) -> None:
    async def app_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AppError)
        response = problem(
            exc.status, exc.slug, exc.title, exc.detail, request.url.path, **exc.extra
        )
        response.headers.update(exc.headers)
        if exc.retry_after_s is not None:
            response.headers["Retry-After"] = str(exc.retry_after_s)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "loc": list(err.get("loc", ())),
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        detail = f"{where}: {first['msg']}" if where else str(first["msg"])
        return problem(
            422, "validation-error", "Invalid request", detail, request.url.path, errors=errors
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 413:
            detail = too_large_detail(request.scope)
            return problem(
                413, PayloadTooLarge.slug, PayloadTooLarge.title, detail, request.url.path
            )
        return problem(exc.status_code, "http-error", detail, detail, request.url.path)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem(
            500,
            "internal-error",
            "Internal error",
            "an unexpected error occurred; it has been logged",
            request.url.path,
        )

    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
