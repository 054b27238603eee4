"""Planes on one host may speak gRPC over a Unix domain socket (`unix:/path` as
PRISM_GRPC_LISTEN and PRISM_CONTROLPLANE_ADDR): the same service and the same credentials as
over TCP, and a socket a live control plane serves is an error at start, as a taken port is."""

import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import openai
import pytest

from prism.v1 import admin_pb2, authorizer_pb2, authorizer_pb2_grpc
from tests.conftest import (
    DATAPLANE_TOKEN,
    AdminClient,
    AuthorizerClient,
    ControlPlane,
    DataPlane,
    IssueKey,
    assert_one_clear_line,
    start_and_fail,
)
from tools import stack


@pytest.fixture
def good_settings(redis_url: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "PRISM_ADMIN_TOKEN": "admin-" + secrets.token_urlsafe(16),
        "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
        "PRISM_UPSTREAM_API_KEY": "sk-upstream-test",
        "PRISM_METRICS_LISTEN": f"127.0.0.1:{stack.free_port()}",
    }


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # Short: a socket's path must fit in about 100 bytes, which pytest's tmp_path can exceed.
    directory = Path(tempfile.mkdtemp(prefix="prism-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_a_data_plane_decides_through_a_control_plane_on_a_unix_socket(
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
    admin: AdminClient,
    issue_key: IssueKey,
    socket_dir: Path,
) -> None:
    address = f"unix:{socket_dir}/controlplane.sock"
    start_controlplane(PRISM_GRPC_LISTEN=address)
    dataplane = start_dataplane(address)
    _, issued = issue_key()

    with openai.OpenAI(base_url=dataplane.url, api_key=issued.secret, max_retries=0) as sdk:
        thread = sdk.beta.threads.create()
        assert sdk.beta.threads.retrieve(thread.id).id == thread.id
        admin.RevokeKey(admin_pb2.RevokeKeyRequest(id=issued.key.id))
        # The revocation applies on the very next request, over the socket as over TCP.
        with pytest.raises(openai.AuthenticationError):
            sdk.beta.threads.retrieve(thread.id)


def test_the_unix_socket_asks_the_same_credential(
    start_controlplane: Callable[..., ControlPlane], issue_key: IssueKey, socket_dir: Path
) -> None:
    address = f"unix:{socket_dir}/controlplane.sock"
    start_controlplane(PRISM_GRPC_LISTEN=address)
    _, issued = issue_key()
    request = authorizer_pb2.CheckRequest(api_key=issued.secret, route="GET /v1/assistants")

    with grpc.insecure_channel(address) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            authorizer_pb2_grpc.AuthorizerStub(channel).Check(request, timeout=10)
        allowed = AuthorizerClient(channel).Check(request)

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "PRISM_DATAPLANE_TOKEN" in refused.value.details()
    assert allowed.allowed, allowed.denial


def test_a_socket_a_control_plane_serves_stops_a_second_one_with_one_line(
    start_controlplane: Callable[..., ControlPlane],
    good_settings: dict[str, str],
    socket_dir: Path,
) -> None:
    address = f"unix:{socket_dir}/controlplane.sock"
    first = start_controlplane(PRISM_GRPC_LISTEN=address)

    result = start_and_fail("controlplane", good_settings | {"PRISM_GRPC_LISTEN": address})

    assert_one_clear_line(
        result, "controlplane", 1, f"PRISM_GRPC_LISTEN={address}", "a server is listening"
    )
    # The first still has its socket and its callers.
    with grpc.insecure_channel(address) as channel:
        answer = AuthorizerClient(channel).Check(authorizer_pb2.CheckRequest())
    assert answer.denial.code == "missing_api_key", answer
    assert first.process.running()


def test_a_socket_left_by_a_stopped_process_is_replaced(
    start_controlplane: Callable[..., ControlPlane], socket_dir: Path
) -> None:
    path = socket_dir / "controlplane.sock"
    left_over = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left_over.bind(str(path))
    left_over.close()  # bound, never listening: what a killed process leaves

    controlplane = start_controlplane(PRISM_GRPC_LISTEN=f"unix:{path}")

    with grpc.insecure_channel(controlplane.addr) as channel:
        answer = AuthorizerClient(channel).Check(authorizer_pb2.CheckRequest())
    assert answer.denial.code == "missing_api_key", answer


def test_a_socket_in_a_missing_directory_stops_the_start_with_one_line(
    good_settings: dict[str, str], socket_dir: Path
) -> None:
    address = f"unix:{socket_dir}/missing/controlplane.sock"

    result = start_and_fail("controlplane", good_settings | {"PRISM_GRPC_LISTEN": address})

    assert_one_clear_line(result, "controlplane", 1, f"PRISM_GRPC_LISTEN={address}", "directory")
    assert not os.path.exists(socket_dir / "missing")
