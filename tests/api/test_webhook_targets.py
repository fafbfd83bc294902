"""The SSRF guard on webhook targets, on address literals (no DNS needed)."""

from __future__ import annotations

import pytest

from app.webhooks.targets import InvalidWebhookTarget, check_target

REFUSED = [
    "http://127.0.0.1/hook",
    "http://localhost:8000/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://172.16.5.5/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
    "ftp://93.184.216.34/hook",
    "http://user:pass@93.184.216.34/hook",
    "/relative",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(InvalidWebhookTarget):
        check_target(url, allow_private=False)


def test_public_address_is_accepted() -> None:
    check_target("https://93.184.216.34/hook", allow_private=False)


def test_private_targets_pass_when_allowed() -> None:
    check_target("http://127.0.0.1:9/hook", allow_private=True)
