"""The client address the gateway checks keys' and orgs' IP ranges against: the connection's
peer, or, when the peer is a trusted proxy (PRISM_TRUSTED_PROXIES), the nearest untrusted
address of X-Forwarded-For. The tests connect from 127.0.0.1, so a gateway trusting
127.0.0.1 plays one behind a proxy and the default gateway one facing clients directly."""

import re
from collections.abc import Callable, Sequence

import httpx
import openai
import pytest

from tests.conftest import ControlPlane, DataPlane, IssueKey, Upstream

# The denial names the address it judged.
_JUDGED = re.compile(r"client IP (\S+) is not allowed")
# TEST-NET-1: no address the tests send is in it, so a key limited to it is always refused.
_NOWHERE = "192.0.2.0/24"


@pytest.fixture(scope="module")
def behind_proxies(
    start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane
) -> DataPlane:
    """A gateway behind a proxy on this machine, and a further tier of proxies in 10/8."""
    return start_dataplane(controlplane.addr, PRISM_TRUSTED_PROXIES="127.0.0.1/32, 10.0.0.0/8")


@pytest.fixture(scope="module")
def refused_key(issue_key: IssueKey) -> str:
    return issue_key(allowed_ip_ranges=[_NOWHERE])[1].secret


def judged_address(dataplane: DataPlane, secret: str, forwarded_for: Sequence[str]) -> str:
    """The address the gateway judged a request by, sent with these X-Forwarded-For lines."""
    headers = [("authorization", f"Bearer {secret}")]
    headers += [("x-forwarded-for", line) for line in forwarded_for]
    response = httpx.get(f"{dataplane.url}/assistants", headers=headers, timeout=30)
    assert response.status_code == 403, response.text
    match = _JUDGED.search(response.json()["error"]["message"])
    assert match is not None, response.text
    return match[1]


@pytest.mark.parametrize(
    ("forwarded_for", "client"),
    [
        (["203.0.113.9"], "203.0.113.9"),
        # Whatever the client wrote left of what the proxy appended is not believed.
        (["10.9.9.9, 198.51.100.1, 203.0.113.9"], "203.0.113.9"),
        # Trusted proxies are walked past, from the nearest.
        (["198.51.100.1, 203.0.113.9, 10.1.1.1, 10.2.2.2"], "203.0.113.9"),
        # Every hop trusted: the farthest one known.
        (["10.3.3.3, 10.1.1.1"], "10.3.3.3"),
        # Several header lines are one list, in order.
        (["198.51.100.1", "203.0.113.9", "10.1.1.1"], "203.0.113.9"),
        (["2001:db8::7"], "2001:db8::7"),
        (["::ffff:203.0.113.9"], "203.0.113.9"),
        # A chain the rule cannot follow is not believed at all: the peer.
        (["203.0.113.9, proxy.internal"], "127.0.0.1"),
        (["203.0.113.9, 10.1.1.1:443"], "127.0.0.1"),
        (["203.0.113.9,,10.1.1.1"], "127.0.0.1"),
        ([""], "127.0.0.1"),
        # No header: the peer.
        ([], "127.0.0.1"),
    ],
    ids=[
        "one-hop",
        "spoofed-prefix",
        "trusted-tier",
        "all-trusted",
        "several-lines",
        "ipv6",
        "ipv4-mapped",
        "host-name",
        "with-port",
        "empty-entry",
        "empty-header",
        "no-header",
    ],
)
def test_a_trusted_proxys_forwarded_for_names_the_client(
    behind_proxies: DataPlane,
    refused_key: str,
    upstream: Upstream,
    forwarded_for: list[str],
    client: str,
) -> None:
    assert judged_address(behind_proxies, refused_key, forwarded_for) == client
    assert upstream.requests() == []


def test_the_forwarded_address_is_what_the_keys_ranges_allow(
    behind_proxies: DataPlane, issue_key: IssueKey, upstream: Upstream
) -> None:
    _, issued = issue_key(allowed_ip_ranges=["203.0.113.0/24"])
    sdk = openai.OpenAI(base_url=behind_proxies.url, api_key=issued.secret, max_retries=0)

    with sdk:
        listed = sdk.beta.assistants.list(extra_headers={"X-Forwarded-For": "203.0.113.9"})
        with pytest.raises(openai.PermissionDeniedError) as denied:
            sdk.beta.assistants.list(extra_headers={"X-Forwarded-For": "198.51.100.1"})

    assert listed.object == "list"
    assert "198.51.100.1" in denied.value.message
    assert [r["path"] for r in upstream.requests()] == ["/v1/assistants"]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    dataplane: DataPlane, issue_key: IssueKey, refused_key: str, upstream: Upstream
) -> None:
    """The default gateway trusts no proxy: a client cannot claim an allowed address."""
    _, issued = issue_key(allowed_ip_ranges=["10.0.0.0/8"])
    sdk = openai.OpenAI(base_url=dataplane.url, api_key=issued.secret, max_retries=0)

    with sdk, pytest.raises(openai.PermissionDeniedError) as denied:
        sdk.beta.assistants.list(extra_headers={"X-Forwarded-For": "10.1.2.3"})

    assert "client IP 127.0.0.1 " in denied.value.message
    assert judged_address(dataplane, refused_key, ["203.0.113.9"]) == "127.0.0.1"
    assert upstream.requests() == []
