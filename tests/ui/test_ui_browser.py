"""The /ui pages in a real headless browser (Debian's chromium and chromedriver, via selenium)
against a live stack with authentication on: sign-in, the lists, a finished job's figures and
plot, live progress from the event stream, and the cookie's limits."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.helpers import (
    submit_job,
    wait_for_job,
)
from tests.fixtures.stack import REQUIRE, Stack

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the networking flags chromium stalls on a closed network; no sandbox as root in CI.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)
JOB_TIMEOUT_S = 600


def _browser_or_skip() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = f"the browser tests need {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if REQUIRE:
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A fresh headless chromium with its own profile: no cookies, nothing cached."""
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def digits(digits_goal: dict[str, Any]) -> dict[str, Any]:
    """The shared digits MLP with its train and eval sets (tests/fixtures/goal.py)."""
    _browser_or_skip()  # before minutes of set-up for tests that would skip
    return {"model": digits_goal["model"], **digits_goal["data"]}


@pytest.fixture(scope="module")
def recipe_job(goal_stack: Stack, digits: dict[str, Any]) -> str:
    """Submitted, not waited for: the first page that opens it may still see it run."""
    with goal_stack.client() as client:
        return submit_job(
            client,
            digits["model"],
            [{"technique": "quantization", "scheme": "int8_dynamic"}],
            data={"eval": digits["eval"]},
        )


@pytest.fixture(scope="module")
def goal_job(digits: dict[str, Any], size_goal_job: dict[str, Any]) -> dict[str, Any]:
    """The finished goal job (issue 14) the goal tests ran, and its report."""
    return {"id": size_goal_job["job"]["id"], "report": size_goal_job["report"]}


def _sign_in(browser: Any, stack: Stack, key: str | None = None) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{stack.base_url}/ui/login")
    browser.find_element(By.ID, "api_key").send_keys(key or stack.api_key)
    browser.find_element(By.ID, "sign-in").click()
    # The answer is a new page: wait for it (a busy server may take a moment), not for time.
    _wait(
        browser,
        60,
        lambda b: b.find_elements(By.ID, "login-error") or "/ui/login" not in b.current_url,
    )


def _wait(browser: Any, timeout: float, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.5).until(condition)


def _plot_loaded(browser: Any) -> int:
    """The plot's width as the browser decoded it: 0 when the image failed to load."""
    from selenium.webdriver.common.by import By

    image = browser.find_element(By.ID, "plot")
    _wait(browser, 60, lambda b: b.execute_script("return arguments[0].complete", image))
    return int(browser.execute_script("return arguments[0].naturalWidth", image))


def _figures(browser: Any) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.CSS_SELECTOR, "#figures tbody tr")
    return {row.get_attribute("id"): row.text for row in rows}


def test_an_unauthenticated_browser_is_sent_to_sign_in(goal_stack: Stack, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{goal_stack.base_url}/ui")
    assert browser.current_url == f"{goal_stack.base_url}/ui/login?next=/ui"
    browser.get(f"{goal_stack.base_url}/ui/jobs/any")
    assert browser.current_url.endswith("/ui/login?next=/ui/jobs/any")
    _sign_in(browser, goal_stack, key="mp_not_a_key")
    assert "unknown or revoked" in browser.find_element(By.ID, "login-error").text
    assert browser.get_cookies() == []


def test_recipe_job_page_follows_progress_then_shows_figures_and_plot(
    goal_stack: Stack, browser: Any, recipe_job: str
) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, goal_stack)
    assert browser.current_url == f"{goal_stack.base_url}/ui"
    [cookie] = browser.get_cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    browser.get(f"{goal_stack.base_url}/ui/jobs/{recipe_job}")
    # The event stream (the cookie authenticates it) updates the page and reloads it at the end.
    _wait(browser, JOB_TIMEOUT_S, lambda b: b.find_elements(By.ID, "figures"))
    assert browser.find_element(By.ID, "status").text == "succeeded"
    with goal_stack.client() as client:
        report = client.get(f"/v1/jobs/{recipe_job}/report").json()["report"]
    figures = _figures(browser)
    original_kb = f"{report['original']['model_bytes'] / 1e3:.3g} kB"
    assert original_kb in figures["figure-bytes"], figures
    assert f"{report['compression_ratio']:.3g}x smaller" in figures["figure-bytes"], figures
    assert f"{report['compressed']['latency_p50_ms']:.4g} ms" in figures["figure-latency"]
    accuracy = report["fidelity"]["accuracy_compressed"]
    assert f"{accuracy:.4g}" in figures["figure-accuracy"], figures
    assert _plot_loaded(browser) > 0
    phases = browser.find_element(By.ID, "phases").text
    assert "queue wait" in phases and "uploading artifact" in phases, phases


def test_index_lists_jobs_and_models_newest_first(
    goal_stack: Stack, browser: Any, recipe_job: str, digits: dict[str, str]
) -> None:
    from selenium.webdriver.common.by import By

    with goal_stack.client() as client:
        wait_for_job(client, recipe_job, stack=goal_stack, timeout=JOB_TIMEOUT_S)
    _sign_in(browser, goal_stack)
    row = browser.find_element(By.CSS_SELECTOR, f'#jobs tr[data-job="{recipe_job}"]')
    assert "succeeded" in row.text and "quantization" in row.text
    assert browser.find_elements(By.CSS_SELECTOR, f'#models tr[data-model="{digits["model"]}"]')
    row.find_element(By.TAG_NAME, "a").click()
    assert browser.current_url.endswith(f"/ui/jobs/{recipe_job}")


def test_the_cookie_reads_but_never_writes(goal_stack: Stack, recipe_job: str) -> None:
    """Plain HTTP: what the cookie may do, so a page on another site cannot act with it."""
    with goal_stack.client() as keyed:
        wait_for_job(keyed, recipe_job, stack=goal_stack, timeout=JOB_TIMEOUT_S)
    with httpx.Client(base_url=goal_stack.base_url, timeout=60) as client:
        login = client.post(
            "/ui/login",
            data={"api_key": goal_stack.api_key},
            headers={"Origin": goal_stack.base_url},  # as a browser's form post on the page
        )
        assert login.status_code == 303, login.text
        set_cookie = login.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        plot = client.get(f"/ui/jobs/{recipe_job}/plot", headers={"Accept": "image/png"})
        assert plot.status_code == 200, plot.text  # authenticated by the cookie alone
        assert plot.content.startswith(b"\x89PNG\r\n\x1a\n")
        cancel = client.post(f"/v1/jobs/{recipe_job}/cancel")
        assert cancel.status_code == 401, cancel.text


def test_goal_job_page_shows_candidates_figures_and_plot(
    goal_stack: Stack, browser: Any, goal_job: dict[str, Any]
) -> None:
    from selenium.webdriver.common.by import By

    search = goal_job["report"]["search"]
    _sign_in(browser, goal_stack)
    browser.get(f"{goal_stack.base_url}/ui/jobs/{goal_job['id']}")
    figures = _figures(browser)
    assert f"{goal_job['report']['compression_ratio']:.3g}x smaller" in figures["figure-bytes"]
    assert "figure-accuracy" in figures and "figure-latency" in figures
    rows = browser.find_elements(By.CSS_SELECTOR, "#candidates tbody tr")
    assert len(rows) == len(search["candidates"])
    chosen = browser.find_elements(By.CSS_SELECTOR, "#candidates tr.chosen")
    assert [r.get_attribute("data-candidate") for r in chosen] == [search["chosen_job_id"]]
    front = {c["job_id"] for c in search["candidates"] if c["on_front"]}
    shown = {
        r.get_attribute("data-candidate")
        for r in rows
        if r.find_element(By.CLASS_NAME, "front").text == "on front"
    }
    assert shown == front
    assert search["budget"] in browser.find_element(By.ID, "search").text
    assert _plot_loaded(browser) > 0
