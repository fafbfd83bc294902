"""Security headers on every /ui response: pages, redirects, error answers and 404s alike.

A middleware rather than the routes, because an error the framework renders (a 422 for a bad
form, a 404 for an unknown page) never passes through a route. A page sets its own
Content-Security-Policy with the nonce of its inline style and script; this one fills in the
rest.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(nonce: str | None = None) -> str:
    """Only this server's resources; inline code only with the page's nonce; never framed."""
    inline = f"'nonce-{nonce}'" if nonce else "'none'"
    return (
        f"default-src 'self'; script-src {inline}; style-src {inline}; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


_ALWAYS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Job ids in URLs stay on this server; a same-origin form still sends its Origin (CSRF check).
    "Referrer-Policy": "same-origin",
}


class UiSecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != "/ui" and not path.startswith("/ui/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS.items():
                    headers[name] = value
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = content_security_policy()
            await send(message)

        await self.app(scope, receive, send_with_headers)
