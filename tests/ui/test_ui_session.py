"""The /ui sign-in (issue 28): login CSRF refused, a signed expiring session token instead of the
key in the cookie, revocation ending the session, and the pages' security headers.

In process (FastAPI's TestClient) over a migrated SQLite database with authentication on; the
key is revoked by the operator's CLI in its own process, as in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.auth import keys
from app.cli import migrate
from app.db.session import get_engine, get_sessionmaker
from app.main import create_app
from app.settings import get_settings
from app.ui import session as ui_session
from tests.fixtures.rows import job_row

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://modelpress.test"
SAME_SITE = {"Origin": BASE}


@dataclass
class Key:
    id: str
    plain: str


def _clear_caches() -> None:
    get_settings.cache_clear()
    get_engine.cache_clear()
    get_sessionmaker.cache_clear()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in [n for n in os.environ if n.startswith("MODELPRESS_")]:
        if not name.startswith("MODELPRESS_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODELPRESS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MODELPRESS_AUTH_REQUIRED", "true")
    _clear_caches()
    migrate()
    yield tmp_path
    get_engine().dispose()
    _clear_caches()


@pytest.fixture
def client(data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(), base_url=BASE, follow_redirects=False) as test_client:
        yield test_client


def _new_key(tenant: str = "acme") -> Key:
    with get_sessionmaker().begin() as session:
        row, plain = keys.create_key(session, tenant=tenant, admin=False)
        return Key(row.id, plain)


def _queued_job(*, tenant: str) -> str:
    with get_sessionmaker().begin() as session:
        return job_row(session, tenant=tenant)


def _revoke_with_cli(data_dir: Path, key_id: str) -> None:
    env = {**os.environ, "MODELPRESS_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "app.cli", "api-key", "revoke", key_id]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)


def _login(client: TestClient, key: str, headers: dict[str, str] | None = None) -> str | None:
    """The session cookie's value set by signing in, or None; fails unless 303 or refused."""
    answer = client.post("/ui/login", data={"api_key": key}, headers=headers or SAME_SITE)
    client.cookies.clear()  # each test sends the cookie it means to, explicitly
    if answer.status_code != 303:
        assert "set-cookie" not in answer.headers, answer.headers
        return None
    cookie = SimpleCookie(answer.headers.get_list("set-cookie")[0])[ui_session.COOKIE]
    return cookie.value


def _use(client: TestClient, token: str) -> TestClient:
    client.cookies.clear()
    client.cookies.set(ui_session.COOKIE, token)
    return client


def _index(client: TestClient, token: str) -> int:
    return _use(client, token).get("/ui").status_code


class TestLoginCsrf:
    @pytest.mark.parametrize(
        "headers",
        [
            {"Origin": "http://evil.example"},
            {"Origin": "null"},  # a sandboxed frame or a no-referrer page elsewhere
            {"Origin": "https://modelpress.test"},  # another scheme is another origin
            {"Referer": "http://evil.example/login-csrf.html"},
            {},  # every browser sends Origin on a POST: none at all is no form of ours
        ],
    )
    def test_a_post_from_elsewhere_is_refused_and_sets_no_cookie(
        self, client: TestClient, headers: dict[str, str]
    ) -> None:
        key = _new_key()
        answer = client.post("/ui/login", data={"api_key": key.plain}, headers=headers)
        assert answer.status_code == 403, answer.text
        assert "set-cookie" not in answer.headers
        assert "did not come from a page of this server" in answer.text

    def test_a_same_origin_form_post_signs_in(self, client: TestClient) -> None:
        key = _new_key()
        by_origin = _login(client, key.plain)
        by_referer = _login(client, key.plain, {"Referer": f"{BASE}/ui/login?next=/ui"})
        assert by_origin is not None and by_referer is not None
        assert _index(client, by_origin) == 200

    def test_logout_from_elsewhere_is_refused(self, client: TestClient) -> None:
        answer = client.post("/ui/logout", headers={"Origin": "http://evil.example"})
        assert answer.status_code == 403
        assert client.post("/ui/logout", headers=SAME_SITE).status_code == 303


class TestSessionCookie:
    def test_the_cookie_holds_a_signed_session_not_the_key(self, client: TestClient) -> None:
        key = _new_key()
        answer = client.post("/ui/login", data={"api_key": key.plain}, headers=SAME_SITE)
        assert answer.status_code == 303
        [set_cookie, old_cookie] = answer.headers.get_list("set-cookie")
        assert old_cookie.startswith('modelpress_key=""; ') and "Max-Age=0" in old_cookie
        assert key.plain not in set_cookie and keys.hash_key(key.plain) not in set_cookie
        attributes = set_cookie.lower()
        assert "samesite=strict" in attributes and "httponly" in attributes
        assert "path=/ui;" in attributes + ";"
        assert f"max-age={8 * 3600}" in attributes
        assert "secure" not in attributes  # plain http here; https requests get Secure

    def test_max_age_follows_the_setting(
        self, data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MODELPRESS_UI_SESSION_MAX_AGE_S", "600")
        get_settings.cache_clear()
        key = _new_key()
        with TestClient(create_app(), base_url=BASE, follow_redirects=False) as client:
            answer = client.post("/ui/login", data={"api_key": key.plain}, headers=SAME_SITE)
        assert "max-age=600" in answer.headers.get_list("set-cookie")[0].lower()

    def test_revoking_the_key_ends_the_session(self, client: TestClient, data_dir: Path) -> None:
        key = _new_key()
        token = _login(client, key.plain)
        assert token is not None and _index(client, token) == 200
        _revoke_with_cli(data_dir, key.id)
        answer = _use(client, token).get("/ui")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/login?next=/ui"
        # The dead cookie is dropped on the way to the sign-in page.
        assert 'modelpress_session=""' in answer.headers["set-cookie"]
        events = client.get("/ui/jobs/any/events")
        assert events.status_code == 401

    def test_a_tampered_token_is_refused(self, client: TestClient) -> None:
        key, other = _new_key(), _new_key("other")
        token = _login(client, key.plain)
        assert token is not None
        key_id, expiry, mac = token.split(".")
        flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
        forged = [
            f"{key_id}.{expiry}.{flipped}",
            f"{key_id}.{int(expiry) - 60}.{mac}",  # another expiry
            f"{other.id}.{expiry}.{mac}",  # someone else's key
            f"{key_id}.{expiry}",
            key.plain,  # the raw key no longer counts as a cookie
        ]
        assert [_index(client, bad) for bad in forged] == [303] * len(forged)
        # What no HTTP client here would send, but a hostile one may: no 500 either.
        assert ui_session.verify(f"{key_id}.{expiry}.{mac[:-1]}é") is None
        assert ui_session.verify(f"{key_id}.{expiry[:-1]}²." + mac) is None

    def test_changing_the_secret_ends_every_session(
        self, client: TestClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MODELPRESS_UI_SESSION_SECRET", "a" * 32)
        get_settings.cache_clear()
        token = _login(client, _new_key().plain)
        assert token is not None and _index(client, token) == 200
        monkeypatch.setenv("MODELPRESS_UI_SESSION_SECRET", "b" * 32)
        get_settings.cache_clear()
        assert _index(client, token) == 303

    def test_an_expired_token_is_refused(self, client: TestClient) -> None:
        key = _new_key()
        with get_sessionmaker()() as session:
            row = session.get(keys.ApiKey, key.id)
            assert row is not None
            fresh = ui_session.issue(key=row)
            stale = ui_session.issue(key=row, now=time.time() - 8 * 3600 - 1)
        assert _index(client, fresh) == 200
        assert _index(client, stale) == 303

    def test_a_session_reads_only_its_tenants_job_pages(self, client: TestClient) -> None:
        job_id = _queued_job(tenant="acme")
        own = _login(client, _new_key("acme").plain)
        other = _login(client, _new_key("other").plain)
        assert own is not None and other is not None
        page = _use(client, own).get(f"/ui/jobs/{job_id}")
        assert page.status_code == 200 and job_id in page.text
        assert f'src="/ui/jobs/{job_id}/plot"' not in page.text  # no report yet
        assert f'EventSource("/ui/jobs/" + "{job_id}" + "/events")' in page.text
        assert client.get(f"/ui/jobs/{job_id}/plot").status_code == 409  # not succeeded yet
        for path in (f"/ui/jobs/{job_id}", f"/ui/jobs/{job_id}/plot", f"/ui/jobs/{job_id}/events"):
            assert _use(client, other).get(path).status_code == 404, path
        client.cookies.clear()
        assert client.get(f"/ui/jobs/{job_id}/plot").status_code == 401
        assert client.get(f"/ui/jobs/{job_id}/events").status_code == 401

    def test_the_api_does_not_take_the_cookie(self, client: TestClient) -> None:
        token = _login(client, _new_key().plain)
        assert token is not None
        assert _use(client, token).get("/v1/jobs").status_code == 401


class TestSecurityHeaders:
    def _assert_headers(self, headers: dict[str, str] | object) -> None:
        get = headers.get  # type: ignore[attr-defined]
        policy = get("content-security-policy")
        assert policy is not None and "frame-ancestors 'none'" in policy
        assert "default-src 'self'" in policy and "unsafe-inline" not in policy
        assert get("x-frame-options") == "DENY"
        assert get("x-content-type-options") == "nosniff"

    def test_every_ui_answer_carries_them(self, client: TestClient) -> None:
        key = _new_key()
        answers = [
            client.get("/ui/login"),
            client.get("/ui"),  # the redirect to sign in
            client.get("/ui/no/such/page"),  # the framework's 404
            client.post("/ui/login", data={}, headers=SAME_SITE),  # the framework's 422
            client.post("/ui/login", data={"api_key": "mp_nope"}, headers=SAME_SITE),
            client.post("/ui/login", data={"api_key": key.plain}, headers={}),  # refused
            client.post("/ui/login", data={"api_key": key.plain}, headers=SAME_SITE),
        ]
        for answer in answers:
            self._assert_headers(answer.headers)
        assert [a.status_code for a in answers] == [200, 303, 404, 422, 401, 403, 303]

    def test_inline_style_and_script_run_only_by_the_pages_nonce(self, client: TestClient) -> None:
        page = client.get("/ui/login")
        policy = page.headers["content-security-policy"]
        nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
        assert f"style-src 'nonce-{nonce}'" in policy
        assert f'<style nonce="{nonce}">' in page.text
        again = client.get("/ui/login").headers["content-security-policy"]
        assert again != policy  # a fresh nonce per page
        assert '<meta name="referrer" content="same-origin">' in page.text
