"""The /ui sign-in: a signed, expiring session token in a cookie, never the API key itself.

A token is ``<api key id>.<expiry, unix s>.<mac>``. Each request checks the expiry, loads the key
row by id (a revoked or deleted key ends its sessions at once) and checks the MAC. The MAC's key
is HMAC-SHA256(``MODELPRESS_UI_SESSION_SECRET``, the key row's hash): with the setting unset,
the per-key hash alone still keeps tokens unforgeable (it is SHA-256 of 256 random bits, known
only to the key's holder and the database), and every API process on every host agrees on it
because it lives in the database they share; no file in one machine's data dir to drift apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from urllib.parse import urlsplit

from fastapi import Request

from app.db.models import ApiKey
from app.db.session import get_sessionmaker
from app.settings import get_settings

COOKIE = "modelpress_session"
PATH = "/ui"
_CONTEXT = b"modelpress /ui session v1\x00"
_EXPIRY = re.compile(r"[0-9]{1,12}")  # ASCII digits only: int() also takes "²" and "١"


def _mac(*, key_id: str, key_hash: str, expiry: int) -> str:
    secret = get_settings().auth.ui_session_secret
    signing = hmac.new(
        secret.get_secret_value().encode() if secret else b"",
        _CONTEXT + key_hash.encode(),
        hashlib.sha256,
    ).digest()
    mac = hmac.new(signing, f"{key_id}|{expiry}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def issue(*, key: ApiKey, now: float | None = None) -> str:
    """A token for ``key``'s tenant, good for ``MODELPRESS_UI_SESSION_MAX_AGE_S``."""
    now = time.time() if now is None else now
    expiry = int(now) + get_settings().auth.ui_session_max_age_s
    return f"{key.id}.{expiry}.{_mac(key_id=key.id, key_hash=key.key_hash, expiry=expiry)}"


def verify(token: str, *, now: float | None = None) -> ApiKey | None:
    """The active key a token was issued for; None if it is malformed, expired, forged or its
    key was revoked since."""
    now = time.time() if now is None else now
    parts = token.split(".")
    if len(parts) != 3 or not _EXPIRY.fullmatch(parts[1]) or len(parts[0]) > 36:
        return None
    key_id, expiry_text, mac = parts
    expiry = int(expiry_text)
    # The upper bound cuts tokens issued under a longer max age than today's setting.
    if not now < expiry <= now + get_settings().auth.ui_session_max_age_s:
        return None
    # Its own short session, like app/auth/caller.py: the request's would hold a connection.
    with get_sessionmaker()() as lookup:
        row = lookup.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return None
    expected = _mac(key_id=row.id, key_hash=row.key_hash, expiry=expiry)
    # Bytes: compare_digest refuses a str with characters outside ASCII (a hostile cookie).
    return row if hmac.compare_digest(expected.encode(), mac.encode()) else None


def same_origin(request: Request) -> bool:
    """Whether a POST comes from a page of this server (login CSRF defence).

    Browsers send ``Origin`` on every POST; ``Referer`` stands in only where it is missing.
    ``Origin: null`` (a sandboxed frame, a no-referrer page elsewhere) and no header at all are
    refused: a form on this UI always sends its origin (its pages' referrer policy is
    same-origin).
    """
    own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    origin = request.headers.get("origin")
    if origin is None:
        referer = urlsplit(request.headers.get("referer", ""))
        origin = f"{referer.scheme}://{referer.netloc}" if referer.netloc else None
    return origin is not None and origin.lower() == own
