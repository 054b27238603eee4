"""An org that brings its own upstream credential: set with SetUpstreamCredential, used for
its traffic only, never shown by any RPC, and stored sealed with PRISM_MASTER_KEY."""

import base64
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import openai
import pytest

from prism.v1 import admin_pb2
from tests.conftest import (
    DATAPLANE_TOKEN,
    AdminClient,
    ControlPlane,
    DataPlane,
    IssueKey,
    Upstream,
    assert_one_clear_line,
    launch_engine,
    start_and_fail,
)
from tests.test_admin import redis_dump
from tools import stack

MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(scope="module")
def own_upstream(redis_url: str, workdir: Path, logs: Path) -> Iterator[Upstream]:
    """An upstream that accepts only the org's own credential, not the gateway's key: a
    second engine behind its own fault proxy, which records what the engine receives."""
    credential = "sk-org-own-" + secrets.token_urlsafe(24)
    engine = launch_engine(redis_url, workdir / "own-engine-data", logs, credential, "own-engine")
    proxy_port = stack.free_port()
    proxy = stack.start_fault_proxy(proxy_port, engine.url, logs)
    yield Upstream(f"http://127.0.0.1:{proxy_port}/v1", credential, proxy)
    proxy.stop()
    engine.process.stop()


@pytest.fixture(scope="module")
def sealing_controlplane(
    start_controlplane: Callable[..., ControlPlane], own_upstream: Upstream
) -> ControlPlane:
    return start_controlplane(
        PRISM_MASTER_KEY=MASTER_KEY,
        PRISM_UPSTREAM_URL=own_upstream.url,
        PRISM_UPSTREAM_API_KEY="sk-gateway-" + secrets.token_urlsafe(24),
    )


@pytest.fixture(scope="module")
def sealing_admin(sealing_controlplane: ControlPlane) -> Iterator[AdminClient]:
    with grpc.insecure_channel(sealing_controlplane.addr) as channel:
        yield AdminClient(channel, sealing_controlplane.admin_token)


@pytest.fixture(scope="module")
def gateway(
    start_dataplane: Callable[..., DataPlane], sealing_controlplane: ControlPlane
) -> DataPlane:
    return start_dataplane(sealing_controlplane.addr)


def _org_and_key(admin: AdminClient) -> tuple[admin_pb2.Org, str]:
    org = admin.CreateOrg(admin_pb2.CreateOrgRequest(org=admin_pb2.Org(display_name="BYO")))
    issued = admin.CreateKey(admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org.id)))
    return org, issued.secret


def _set(admin: AdminClient, org_id: str, api_key: str) -> admin_pb2.Org:
    return admin.SetUpstreamCredential(
        admin_pb2.SetUpstreamCredentialRequest(org_id=org_id, api_key=api_key)
    )


def test_an_orgs_traffic_goes_upstream_with_its_own_credential(
    sealing_admin: AdminClient, gateway: DataPlane, own_upstream: Upstream
) -> None:
    org, secret = _org_and_key(sealing_admin)
    _, other_secret = _org_and_key(sealing_admin)

    updated = _set(sealing_admin, org.id, own_upstream.api_key)
    own_upstream.clear_requests()
    listed = openai.OpenAI(base_url=gateway.url, api_key=secret, max_retries=0).files.list()

    assert updated.has_upstream_credential
    assert listed.data == []
    forwarded = own_upstream.requests()[-1]["headers"]
    assert forwarded["authorization"] == f"Bearer {own_upstream.api_key}"
    # Another org still goes with the gateway's key, which this upstream refuses.
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.url, api_key=other_secret, max_retries=0).files.list()


def test_an_empty_credential_removes_it(
    sealing_admin: AdminClient, gateway: DataPlane, own_upstream: Upstream
) -> None:
    org, secret = _org_and_key(sealing_admin)
    _set(sealing_admin, org.id, own_upstream.api_key)

    cleared = _set(sealing_admin, org.id, "")

    assert not cleared.has_upstream_credential
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.url, api_key=secret, max_retries=0).files.list()


def test_the_credential_is_never_returned_and_never_stored_in_the_clear(
    sealing_admin: AdminClient,
    sealing_controlplane: ControlPlane,
    gateway: DataPlane,
    redis_url: str,
) -> None:
    org, secret = _org_and_key(sealing_admin)
    credential = "sk-org-secret-" + secrets.token_urlsafe(24)

    replies = [
        _set(sealing_admin, org.id, credential),
        sealing_admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id)),
        *sealing_admin.ListOrgs(admin_pb2.ListOrgsRequest(page_size=1000)).orgs,
    ]
    # The upstream refuses this made-up credential; its 401 passes through to the client.
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=gateway.url, api_key=secret, max_retries=0).files.list()

    written = "\n".join(
        [
            *(str(reply) for reply in replies),
            str(refused.value.response.headers),
            refused.value.response.text,
            redis_dump(redis_url),
            sealing_controlplane.process.log(),
            gateway.process.log(),
        ]
    )
    assert credential not in written
    assert credential.removeprefix("sk-org-secret-") not in written


def test_without_a_master_key_credentials_are_refused(
    admin: AdminClient, issue_key: IssueKey
) -> None:
    org, _ = issue_key()

    with pytest.raises(grpc.RpcError) as refused:
        _set(admin, org.id, "sk-anything")

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "PRISM_MASTER_KEY" in refused.value.details()


def test_setting_a_credential_for_an_unknown_org_is_not_found(sealing_admin: AdminClient) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _set(sealing_admin, "no-such-org", "sk-anything")

    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("master_key", ["not-base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_master_key_stops_the_control_plane_with_one_line(
    master_key: str, redis_url: str
) -> None:
    result = start_and_fail(
        "controlplane",
        {
            "REDIS_URL": redis_url,
            "PRISM_ADMIN_TOKEN": "token",
            "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
            "PRISM_UPSTREAM_API_KEY": "sk-upstream",
            "PRISM_GRPC_LISTEN": f"127.0.0.1:{stack.free_port()}",
            "PRISM_MASTER_KEY": master_key,
        },
    )

    assert_one_clear_line(result, "controlplane", 2, "PRISM_MASTER_KEY", "32 random bytes")
