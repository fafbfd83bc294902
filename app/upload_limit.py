"""Request body limits: small for JSON, the upload limit only where files are uploaded.

FastAPI enforces them (``max_body_size`` on the app and on the upload routers): a declared
Content-Length over the limit is refused before a byte is read, and a chunked body as soon as
it passes the limit, so no route buffers more than its limit.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge, problem, too_large_detail

# Multipart framing around the file adds a little to the body; the file itself is held to
# max_upload_bytes exactly while it is received (app.uploads.receive).
MULTIPART_SLACK = 64 * 1024


def upload_body_limit(max_upload_bytes: int) -> int:
    return max_upload_bytes + MULTIPART_SLACK


class _TooLargeAsProblem:
    """Starlette answers a declared Content-Length over the limit with its own text/plain 413,
    from outside every exception handler; this puts it in the one problem format."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_problem(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and _is_plain_413(message):
                replaced = True
                response = problem(
                    413,
                    PayloadTooLarge.slug,
                    PayloadTooLarge.title,
                    too_large_detail(scope),
                    scope.get("path", ""),
                )
                response.headers["Connection"] = "close"  # the unread body is not drained
                await response(scope, receive, send)
            elif not replaced:
                await send(message)

        await self.app(scope, receive, send_problem)


def _is_plain_413(message: Message) -> bool:
    headers = dict(message.get("headers") or [])
    return message["status"] == 413 and headers.get(b"content-type", b"").startswith(b"text/")


class ModelpressAPI(FastAPI):
    """FastAPI whose outermost layer renders the body limiter's 413 as a problem."""

    def build_middleware_stack(self) -> ASGIApp:
        return _TooLargeAsProblem(super().build_middleware_stack())
