"""Where a webhook may point. Private, loopback and link-local targets would let any caller
make the service reach inside its own network (SSRF), so they are refused unless allowed."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from app import errors

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Never a target, whatever they carry: IPv4-compatible addresses are deprecated (RFC 4291) and
# only ever reach the IPv4 address in their last 32 bits; 64:ff9b:1::/48 is NAT64 for a local
# network's own translator (RFC 8215).
_NEVER = (ipaddress.IPv6Network("::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
# The well-known NAT64 prefix (RFC 6052): a translator sends it to the IPv4 in the last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class InvalidWebhookTarget(errors.AppError):
    status, slug, title = 422, "invalid-webhook-target", "Webhook target refused"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a translator or tunnel would deliver this IPv6 address to."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:  # 2002::/16: bits 16-47
        found.append(ip.sixtofour)
    if ip.teredo is not None:  # 2001::/32: the server, and the client (last 32 bits, inverted)
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _not_public(ip: IPAddress) -> bool:
    return not ip.is_global or ip.is_multicast


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _not_public(ip)
    if any(ip in network for network in _NEVER):
        return True
    embedded = _embedded_ipv4(ip)
    if any(_not_public(v4) for v4 in embedded):
        return True
    if ip.ipv4_mapped is not None:  # ::ffff:0:0/96 is not global itself; it is its IPv4
        return False
    return _not_public(ip)


def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse anything but http(s) to a public address; checked at creation and each delivery
    (the name may resolve elsewhere later). An IPv6 address that carries an IPv4 one (mapped,
    NAT64, 6to4, Teredo) is judged by that IPv4 address too."""
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
            f"the webhook host {parts.hostname!r} is a loopback, private or link-local address, "
            "or an IPv6 address carrying one; "
            "set MODELPRESS_WEBHOOK_ALLOW_PRIVATE=true to allow such targets"
        )
