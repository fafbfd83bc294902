"""Where a webhook may point. Private, loopback and link-local targets would let any caller
make the service reach inside its own network (SSRF), so they are refused unless allowed."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from app import errors


class InvalidWebhookTarget(errors.AppError):
    status, slug, title = 422, "invalid-webhook-target", "Webhook target refused"


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse anything but http(s) to a public address; checked at creation and each delivery
    (the name may resolve elsewhere later)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidWebhookTarget("the webhook url must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise InvalidWebhookTarget("the webhook url must not carry credentials")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise InvalidWebhookTarget(f"the webhook host {parts.hostname!r} does not resolve") from exc
    if any(_forbidden(str(info[4][0])) for info in infos):
        raise InvalidWebhookTarget(
            f"the webhook host {parts.hostname!r} is a loopback, private or link-local address; "
            "set MODELPRESS_WEBHOOK_ALLOW_PRIVATE=true to allow such targets"
        )
