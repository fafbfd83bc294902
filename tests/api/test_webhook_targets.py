"""The SSRF guard on webhook targets, on address literals (no DNS needed): the function that
registration and every delivery call, and registration through the API of the package's
PostgreSQL + Redis stack."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.webhooks.targets import InvalidWebhookTarget, check_target
from tests.fixtures.stack import Stack

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

# IPv6 addresses that carry a non-public IPv4 address, which a host stack, NAT64 translator or
# tunnel relay delivers to (issue 28: each was accepted with 201).
EMBEDDED = [
    "http://[::127.0.0.1]/",  # IPv4-compatible (::/96), loopback
    "http://[::a00:1]/",  # IPv4-compatible, 10.0.0.1
    "http://[::93.184.216.34]/",  # IPv4-compatible is deprecated: refused whatever it carries
    "http://[::ffff:a9fe:a9fe]/",  # IPv4-mapped, hex form of 169.254.169.254
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[64:ff9b:1::5db8:d822]/",  # local-use NAT64 (RFC 8215): refused whatever it carries
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2002:c0a8:a::1]/",  # 6to4 of 192.168.0.10
    "http://[2001:0:5db8:d822:0:0:f5ff:fffe]/",  # Teredo, client ~f5ff:fffe = 10.0.0.1
    "http://[2001:0:a00:1::a247:27dd]/",  # Teredo, server 10.0.0.1
]

# Public addresses, including IPv6 ones that carry a public IPv4 address: the guard judges what
# is embedded, not just the prefix.
ACCEPTED = [
    "https://93.184.216.34/hook",
    "https://[2001:4860:4860::8888]/hook",  # Google DNS: in 2001::/23 but not Teredo (2001::/32)
    "https://[64:ff9b::5db8:d822]/hook",  # NAT64 of 93.184.216.34
    "https://[2002:5db8:d822::1]/hook",  # 6to4 of 93.184.216.34
    "https://[::ffff:93.184.216.34]/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(InvalidWebhookTarget):
        check_target(url, allow_private=False)


@pytest.mark.parametrize("url", EMBEDDED)
def test_ipv6_carrying_a_private_ipv4_is_refused(url: str) -> None:
    with pytest.raises(InvalidWebhookTarget, match="IPv6 address carrying one"):
        check_target(url, allow_private=False)


@pytest.mark.parametrize("url", ACCEPTED)
def test_public_address_is_accepted(url: str) -> None:
    check_target(url, allow_private=False)


def test_private_targets_pass_when_allowed() -> None:
    check_target("http://127.0.0.1:9/hook", allow_private=True)


@pytest.fixture(scope="module")
def client(api: Stack) -> Iterator[httpx.Client]:
    """The package's shared stack: PostgreSQL + Redis, private targets refused (the default)."""
    with api.client() as stack_client:
        yield stack_client


class TestRegistration:
    @pytest.mark.parametrize("url", EMBEDDED)
    def test_an_embedded_private_ipv4_is_a_422_problem(
        self, client: httpx.Client, url: str
    ) -> None:
        response = client.post("/v1/webhooks", json={"url": url, "events": ["job.succeeded"]})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "/problems/invalid-webhook-target", response.text
        assert url not in {hook["url"] for hook in client.get("/v1/webhooks").json()["items"]}

    @pytest.mark.parametrize("url", ACCEPTED[1:4])
    def test_an_ipv6_carrying_a_public_ipv4_is_registered(
        self, client: httpx.Client, url: str
    ) -> None:
        response = client.post("/v1/webhooks", json={"url": url, "events": ["job.succeeded"]})
        assert response.status_code == 201, response.text
        assert client.delete(f"/v1/webhooks/{response.json()['id']}").status_code == 204
