"""TLS and mTLS between the planes, with a CA and certificates the tests make: the data plane
reaches a TLS control plane only when it trusts the CA that signed it, and with client
certificates required, only with one that CA signed, which then stands in for the data
planes' token; grpcurl reaches it with the flags the README gives. Bad TLS settings stop
either plane at start with one line."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from prism.v1 import authorizer_pb2, authorizer_pb2_grpc, keys_pb2, keys_pb2_grpc
from tests.certificates import Authority, Issued
from tests.conftest import (
    DATAPLANE_TOKEN,
    AuthorizerClient,
    ControlPlane,
    DataPlane,
    IssueKey,
    Sdk,
    assert_one_clear_line,
    start_and_fail,
)
from tests.grpcurl import grpcurl_with, refused
from tools import stack


@dataclass(frozen=True)
class Pki:
    ours: Authority
    theirs: Authority
    server: Issued
    dataplane: Issued
    # Signed by the other CA.
    stranger: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ours, theirs = Authority("prism test CA", directory), Authority("another CA", directory)
    return Pki(
        ours, theirs, ours.issue("controlplane"), ours.issue("dataplane"), theirs.issue("stranger")
    )


@pytest.fixture(scope="module")
def tls_controlplane(start_controlplane: Callable[..., ControlPlane], pki: Pki) -> ControlPlane:
    return start_controlplane(
        PRISM_GRPC_TLS_CERT=str(pki.server.cert), PRISM_GRPC_TLS_KEY=str(pki.server.key)
    )


@pytest.fixture(scope="module")
def mtls_controlplane(start_controlplane: Callable[..., ControlPlane], pki: Pki) -> ControlPlane:
    return start_controlplane(
        PRISM_GRPC_TLS_CERT=str(pki.server.cert),
        PRISM_GRPC_TLS_KEY=str(pki.server.key),
        PRISM_GRPC_TLS_CLIENT_CA=str(pki.ours.cert),
    )


def _lists_assistants(dataplane: DataPlane, sdk: Sdk, secret: str) -> None:
    assert sdk(secret, base_url=dataplane.url).beta.assistants.list().object == "list"


def _fails_closed(dataplane: DataPlane, sdk: Sdk, secret: str) -> None:
    with pytest.raises(openai.InternalServerError) as failed:
        sdk(secret, base_url=dataplane.url).beta.assistants.list()
    assert failed.value.status_code == 503
    assert failed.value.code == "control_plane_unavailable"
    assert httpx.get(dataplane.base + "/readyz").status_code == 503


def _secure_channel(addr: str, pki: Pki, client: Issued | None = None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ours.cert.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )
    return grpc.secure_channel(addr, credentials)


def _code(call: Callable[[], Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as failed:
        call()
    return failed.value.code()  # type: ignore[attr-defined]


# TLS


def test_a_data_plane_trusting_the_ca_is_served(
    tls_controlplane: ControlPlane,
    start_dataplane: Callable[..., DataPlane],
    pki: Pki,
    issue_key: IssueKey,
    sdk: Sdk,
) -> None:
    _, issued = issue_key()
    dataplane = start_dataplane(tls_controlplane.addr, PRISM_CONTROLPLANE_TLS_CA=str(pki.ours.cert))

    _lists_assistants(dataplane, sdk, issued.secret)
    assert httpx.get(dataplane.base + "/readyz").status_code == 200


def test_a_data_plane_trusting_another_ca_fails_closed(
    tls_controlplane: ControlPlane,
    start_dataplane: Callable[..., DataPlane],
    pki: Pki,
    issue_key: IssueKey,
    sdk: Sdk,
) -> None:
    _, issued = issue_key()
    dataplane = start_dataplane(
        tls_controlplane.addr, PRISM_CONTROLPLANE_TLS_CA=str(pki.theirs.cert)
    )

    _fails_closed(dataplane, sdk, issued.secret)


def test_a_plaintext_peer_gets_no_answer(tls_controlplane: ControlPlane) -> None:
    with grpc.insecure_channel(tls_controlplane.addr) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        code = _code(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5))

    assert code == grpc.StatusCode.UNAVAILABLE


def test_grpcurl_with_the_ca(tls_controlplane: ControlPlane, pki: Pki) -> None:
    listed = grpcurl_with(["-cacert", str(pki.ours.cert)], tls_controlplane.addr, "list")
    assert listed.returncode == 0, listed.stderr
    assert "prism.v1.Admin" in listed.stdout.split()

    created = grpcurl_with(
        ["-cacert", str(pki.ours.cert)],
        tls_controlplane.addr,
        "prism.v1.Admin/CreateOrg",
        data="{}",
        token=tls_controlplane.admin_token,
    )
    assert created.returncode == 0, created.stderr

    untrusted = grpcurl_with(["-cacert", str(pki.theirs.cert)], tls_controlplane.addr, "list")
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr


# mTLS


@pytest.mark.parametrize("client", [None, "stranger"], ids=["no-certificate", "other-ca"])
def test_without_a_certificate_of_the_ca_the_data_plane_fails_closed(
    client: str | None,
    mtls_controlplane: ControlPlane,
    start_dataplane: Callable[..., DataPlane],
    pki: Pki,
    issue_key: IssueKey,
    sdk: Sdk,
) -> None:
    _, issued = issue_key()
    certificate = {}
    if client:
        certificate = {
            "PRISM_CONTROLPLANE_TLS_CERT": str(pki.stranger.cert),
            "PRISM_CONTROLPLANE_TLS_KEY": str(pki.stranger.key),
        }
    # The token alone does not open a server that requires client certificates.
    dataplane = start_dataplane(
        mtls_controlplane.addr, PRISM_CONTROLPLANE_TLS_CA=str(pki.ours.cert), **certificate
    )

    _fails_closed(dataplane, sdk, issued.secret)


def test_a_certificate_of_the_ca_is_the_data_planes_credential(
    mtls_controlplane: ControlPlane,
    start_dataplane: Callable[..., DataPlane],
    pki: Pki,
    issue_key: IssueKey,
    sdk: Sdk,
) -> None:
    _, issued = issue_key()
    dataplane = start_dataplane(
        mtls_controlplane.addr,
        PRISM_CONTROLPLANE_TLS_CA=str(pki.ours.cert),
        PRISM_CONTROLPLANE_TLS_CERT=str(pki.dataplane.cert),
        PRISM_CONTROLPLANE_TLS_KEY=str(pki.dataplane.key),
        # No token: the certificate is enough.
        PRISM_DATAPLANE_TOKEN="",
    )

    _lists_assistants(dataplane, sdk, issued.secret)


def test_a_certificate_opens_the_authorizer_only(
    mtls_controlplane: ControlPlane, pki: Pki, issue_key: IssueKey
) -> None:
    _, issued = issue_key()
    with _secure_channel(mtls_controlplane.addr, pki, pki.dataplane) as channel:
        check = authorizer_pb2.CheckRequest(api_key=issued.secret, method="GET")
        bare = authorizer_pb2_grpc.AuthorizerStub(channel)

        assert bare.Check(check, timeout=5).allowed
        # A token, when sent, must still be the right one.
        assert _code(lambda: AuthorizerClient(channel, token="wrong").Check(check)) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        # Called raw, as the unknown RPC below: an empty body is an empty ListOrgsRequest.
        list_orgs = channel.unary_unary(
            "/prism.v1.Admin/ListOrgs", request_serializer=bytes, response_deserializer=bytes
        )
        assert _code(lambda: list_orgs(b"", timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
        unknown = channel.unary_unary(
            "/prism.v1.Authorizer/NoSuchRpc", request_serializer=bytes, response_deserializer=bytes
        )
        assert _code(lambda: unknown(b"", timeout=5)) == grpc.StatusCode.UNIMPLEMENTED
        keys = keys_pb2_grpc.KeysStub(channel)
        validate = keys_pb2.ValidateKeyRequest(api_key=issued.secret)
        assert _code(lambda: keys.ValidateKey(validate, timeout=5)) == (
            grpc.StatusCode.UNAUTHENTICATED
        )


def test_grpcurl_with_a_client_certificate(mtls_controlplane: ControlPlane, pki: Pki) -> None:
    ca = ["-cacert", str(pki.ours.cert)]
    client = ["-cert", str(pki.dataplane.cert), "-key", str(pki.dataplane.key)]

    listed = grpcurl_with([*ca, *client], mtls_controlplane.addr, "list")
    assert listed.returncode == 0, listed.stderr
    orgs = grpcurl_with(
        [*ca, *client],
        mtls_controlplane.addr,
        "prism.v1.Admin/ListOrgs",
        data="{}",
        token=mtls_controlplane.admin_token,
    )
    assert orgs.returncode == 0, orgs.stderr

    without = grpcurl_with(ca, mtls_controlplane.addr, "list")
    assert without.returncode != 0
    stranger = ["-cert", str(pki.stranger.cert), "-key", str(pki.stranger.key)]
    assert grpcurl_with([*ca, *stranger], mtls_controlplane.addr, "list").returncode != 0
    # A certificate is no admin token.
    refused(
        grpcurl_with([*ca, *client], mtls_controlplane.addr, "prism.v1.Admin/ListOrgs", data="{}"),
        "Unauthenticated",
        "PRISM_ADMIN_TOKEN",
    )


# Bad settings stop the start


@pytest.fixture
def controlplane_settings(redis_url: str) -> Iterator[dict[str, str]]:
    yield {
        "REDIS_URL": redis_url,
        "PRISM_GRPC_LISTEN": f"127.0.0.1:{stack.free_port()}",
        "PRISM_METRICS_LISTEN": f"127.0.0.1:{stack.free_port()}",
        "PRISM_ADMIN_TOKEN": "admin-tls-test",
        "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
        "PRISM_UPSTREAM_API_KEY": "sk-upstream-test",
    }


def test_bad_tls_settings_stop_the_control_plane_with_one_line(
    controlplane_settings: dict[str, str], pki: Pki, tmp_path: Path
) -> None:
    cert, key = str(pki.server.cert), str(pki.server.key)
    cases = [
        ({"PRISM_GRPC_TLS_CERT": cert}, ["PRISM_GRPC_TLS_KEY is not"]),
        ({"PRISM_GRPC_TLS_KEY": key}, ["PRISM_GRPC_TLS_CERT is not"]),
        (
            {"PRISM_GRPC_TLS_CERT": str(tmp_path / "none.pem"), "PRISM_GRPC_TLS_KEY": key},
            ["PRISM_GRPC_TLS_CERT=", "cannot read it"],
        ),
        (
            {"PRISM_GRPC_TLS_CERT": key, "PRISM_GRPC_TLS_KEY": key},
            ["PRISM_GRPC_TLS_CERT=", "no PEM certificate"],
        ),
        (
            {"PRISM_GRPC_TLS_CERT": cert, "PRISM_GRPC_TLS_KEY": str(pki.dataplane.key)},
            ["PRISM_GRPC_TLS_KEY=", "is not the key of the certificate"],
        ),
        (
            {"PRISM_GRPC_TLS_CERT": cert, "PRISM_GRPC_TLS_KEY": cert},
            ["PRISM_GRPC_TLS_KEY=", "not an unencrypted PEM private key"],
        ),
        ({"PRISM_GRPC_TLS_CLIENT_CA": str(pki.ours.cert)}, ["needs PRISM_GRPC_TLS_CERT"]),
    ]
    for change, says in cases:
        result = start_and_fail("controlplane", controlplane_settings | change)
        assert_one_clear_line(result, "controlplane", 2, "configuration error", *says)


def test_bad_tls_settings_stop_the_data_plane_with_one_line(
    redis_url: str, pki: Pki, tmp_path: Path
) -> None:
    settings = {
        "REDIS_URL": redis_url,
        "PRISM_HTTP_LISTEN": f"127.0.0.1:{stack.free_port()}",
        "PRISM_CONTROLPLANE_ADDR": "127.0.0.1:1",
        "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
    }
    client = {
        "PRISM_CONTROLPLANE_TLS_CERT": str(pki.dataplane.cert),
        "PRISM_CONTROLPLANE_TLS_KEY": str(pki.dataplane.key),
    }
    cases = [
        (
            {"PRISM_CONTROLPLANE_TLS_CA": str(tmp_path / "none.pem")},
            ["PRISM_CONTROLPLANE_TLS_CA=", "cannot read it"],
        ),
        (client, ["PRISM_CONTROLPLANE_TLS_CERT needs PRISM_CONTROLPLANE_TLS_CA"]),
        (
            {
                "PRISM_CONTROLPLANE_TLS_CA": str(pki.ours.cert),
                "PRISM_CONTROLPLANE_TLS_CERT": str(pki.dataplane.cert),
                "PRISM_CONTROLPLANE_TLS_KEY": str(pki.server.key),
            },
            ["PRISM_CONTROLPLANE_TLS_KEY=", "is not the key of the certificate"],
        ),
        ({"PRISM_DATAPLANE_TOKEN": ""}, ["PRISM_DATAPLANE_TOKEN is not set"]),
    ]
    for change, says in cases:
        result = start_and_fail("dataplane", settings | change)
        assert_one_clear_line(result, "dataplane", 2, "configuration error", *says)
