"""Operators administer Prism with grpcurl alone: reflection, and the README's commands for
creating an org and a key, using the key, and revoking it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import ControlPlane, DataPlane

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"


def grpcurl(
    addr: str, *verb: str, data: str | None = None, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`grpcurl -plaintext [-rpc-header auth] [-d data] addr verb…`, as an operator types it."""
    flags = ["-rpc-header", f"authorization: Bearer {token}"] if token else []
    flags += ["-d", data] if data is not None else []
    return subprocess.run(
        [GRPCURL, "-plaintext", *flags, addr, *verb],
        capture_output=True,
        text=True,
        timeout=30,
    )


def call(cp: ControlPlane, method: str, body: dict[str, Any]) -> dict[str, Any]:
    result = grpcurl(cp.addr, method, data=json.dumps(body), token=cp.admin_token)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_reflection_lists_and_describes_the_services(controlplane: ControlPlane) -> None:
    listed = grpcurl(controlplane.addr, "list")
    assert listed.returncode == 0, listed.stderr
    assert {"prism.v1.Admin", "prism.v1.Authorizer", "grpc.health.v1.Health"} <= set(
        listed.stdout.split()
    )

    described = grpcurl(controlplane.addr, "describe", "prism.v1.Admin")
    assert described.returncode == 0, described.stderr
    for rpc in ("CreateOrg", "ListKeys", "RevokeKey", "RotateKey"):
        assert f"rpc {rpc} (" in described.stdout


def test_health_is_serving(controlplane: ControlPlane) -> None:
    result = grpcurl(controlplane.addr, "grpc.health.v1.Health/Check")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "SERVING"}


def test_create_org_create_key_use_it_and_revoke_it(
    controlplane: ControlPlane, dataplane: DataPlane
) -> None:
    org = call(
        controlplane,
        "prism.v1.Admin/CreateOrg",
        {"org_id": "grpcurl-acme", "org": {"display_name": "Acme"}},
    )
    assert org["id"] == "grpcurl-acme"
    issued = call(
        controlplane,
        "prism.v1.Admin/CreateKey",
        {
            "key": {
                "org_id": "grpcurl-acme",
                "name": "first key",
                "expire_time": "2099-01-01T00:00:00Z",
            }
        },
    )
    secret = issued["secret"]
    assert secret.startswith(issued["key"]["display_prefix"])
    sdk = openai.OpenAI(base_url=dataplane.url, api_key=secret, max_retries=0)
    assert sdk.beta.assistants.list().object == "list"

    revoked = call(controlplane, "prism.v1.Admin/RevokeKey", {"id": issued["key"]["id"]})

    assert revoked["revoked"] is True
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        sdk.beta.assistants.list()


def test_update_with_a_field_mask(controlplane: ControlPlane) -> None:
    call(controlplane, "prism.v1.Admin/CreateOrg", {"org_id": "grpcurl-mask"})
    updated = call(
        controlplane,
        "prism.v1.Admin/UpdateOrg",
        {
            "org": {"id": "grpcurl-mask", "policy": {"allowed_models": ["gpt-4o*"]}},
            "update_mask": {"paths": ["policy.allowed_models"]},
        },
    )
    assert updated["policy"] == {"allowed_models": ["gpt-4o*"]}


def test_admin_calls_without_the_token_are_refused(controlplane: ControlPlane) -> None:
    result = grpcurl(controlplane.addr, "prism.v1.Admin/ListOrgs", data="{}")
    assert result.returncode != 0
    assert "Unauthenticated" in result.stdout + result.stderr
    assert "PRISM_ADMIN_TOKEN" in result.stdout + result.stderr


def test_errors_carry_status_and_an_actionable_message(controlplane: ControlPlane) -> None:
    result = grpcurl(
        controlplane.addr,
        "prism.v1.Admin/GetOrg",
        data='{"id": "no-such-org"}',
        token=controlplane.admin_token,
    )
    assert result.returncode != 0
    assert "NotFound" in result.stdout + result.stderr
    assert "org 'no-such-org' not found" in result.stdout + result.stderr
