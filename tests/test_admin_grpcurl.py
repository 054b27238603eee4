"""Operators administer Prism with grpcurl alone: reflection, and the README's commands for
creating an org and a key, using the key, and revoking or rotating it; internal services
validate a key the same way, with a service token. The JSON here is what grpcurl accepts:
field names in snake_case or camelCase, Timestamps as RFC 3339 strings, FieldMasks as
`{"paths": [...]}`."""

import hashlib
import json
import time
from typing import Any

import openai
import pytest

from tests.conftest import ControlPlane, DataPlane, Upstream
from tests.grpcurl import grpcurl, refused


def call(cp: ControlPlane, method: str, body: dict[str, Any]) -> dict[str, Any]:
    """An Admin call with the admin token; returns the response as JSON."""
    result = grpcurl(cp.addr, method, data=json.dumps(body), token=cp.admin_token)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def validate(cp: ControlPlane, token: str, api_key: str, **asked: str) -> dict[str, Any]:
    """Keys/ValidateKey as an internal service calls it, with its service token."""
    body = {"api_key": api_key, **asked}
    result = grpcurl(cp.addr, "prism.v1.Keys/ValidateKey", data=json.dumps(body), token=token)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_reflection_lists_and_describes_the_services(controlplane: ControlPlane) -> None:
    listed = grpcurl(controlplane.addr, "list")
    assert listed.returncode == 0, listed.stderr
    assert {
        "prism.v1.Admin",
        "prism.v1.Authorizer",
        "prism.v1.Keys",
        "grpc.health.v1.Health",
    } <= set(listed.stdout.split())

    described = grpcurl(controlplane.addr, "describe", "prism.v1.Admin")
    assert described.returncode == 0, described.stderr
    for rpc in (
        "CreateOrg",
        "GetOrg",
        "ListOrgs",
        "UpdateOrg",
        "DeleteOrg",
        "CreateKey",
        "GetKey",
        "ListKeys",
        "UpdateKey",
        "RevokeKey",
        "RotateKey",
        "SetUpstreamCredential",
        "SetModelPrice",
        "ListModelPrices",
        "SetToolFees",
        "GetUsage",
    ):
        assert f"rpc {rpc} (" in described.stdout

    message = grpcurl(controlplane.addr, "describe", "prism.v1.CreateKeyRequest")
    assert message.returncode == 0, message.stderr
    assert ".prism.v1.Key key = 1;" in message.stdout


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
    assert issued["key"]["expire_time"] == "2099-01-01T00:00:00Z"
    sdk = openai.OpenAI(base_url=dataplane.url, api_key=secret, max_retries=0)
    assert sdk.beta.assistants.list().object == "list"

    revoked = call(controlplane, "prism.v1.Admin/RevokeKey", {"id": issued["key"]["id"]})

    assert revoked["revoked"] is True
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        sdk.beta.assistants.list()


def test_an_internal_service_validates_a_key_and_sees_it_rotate(
    controlplane: ControlPlane, shared_upstream: Upstream
) -> None:
    issued_token = call(controlplane, "prism.v1.Admin/CreateServiceToken", {"name": "billing"})
    token = issued_token["secret"]
    assert token.startswith(issued_token["token"]["display_prefix"])
    call(controlplane, "prism.v1.Admin/CreateOrg", {"orgId": "grpcurl-internal"})
    issued = call(
        controlplane,
        "prism.v1.Admin/CreateKey",
        {
            "key": {
                "orgId": "grpcurl-internal",
                "name": "backend",
                "metadata": {"team": "ml"},
                "policy": {"allowedModels": ["gpt-4o*"]},
            }
        },
    )

    allowed = validate(controlplane, token, issued["secret"], client_ip="10.0.0.1", model="gpt-4o")
    assert (allowed["valid"], allowed["allowed"]) == (True, True)
    assert allowed["principal"] == {
        "org_id": "grpcurl-internal",
        "key_id": issued["key"]["id"],
        "key_display_prefix": issued["key"]["display_prefix"],
        "name": "backend",
        "metadata": {"team": "ml"},
    }
    other_model = validate(controlplane, token, issued["secret"], model="gpt-3.5-turbo")
    assert other_model["valid"] is True
    assert "allowed" not in other_model  # false is proto3's default, which grpcurl leaves out
    assert other_model["denial"]["rule"] == "key.allowed_models"

    rotated = call(controlplane, "prism.v1.Admin/RotateKey", {"id": issued["key"]["id"]})

    assert rotated["secret"] != issued["secret"]
    assert validate(controlplane, token, rotated["secret"])["allowed"] is True
    old = validate(controlplane, token, issued["secret"])
    assert "valid" not in old and "principal" not in old
    assert old["denial"]["code"] == "invalid_api_key"
    assert old["denial"]["http_status"] == 401
    everything = json.dumps([allowed, other_model, old])
    assert shared_upstream.api_key not in everything
    assert hashlib.sha256(rotated["secret"].encode()).hexdigest() not in everything


def test_a_revoked_service_token_validates_nothing(controlplane: ControlPlane) -> None:
    issued = call(controlplane, "prism.v1.Admin/CreateServiceToken", {"name": "leaving"})
    listed = call(controlplane, "prism.v1.Admin/ListServiceTokens", {"page_size": 1000})
    assert issued["token"] in listed["tokens"]

    revoked = call(controlplane, "prism.v1.Admin/RevokeServiceToken", {"id": issued["token"]["id"]})
    again = call(controlplane, "prism.v1.Admin/RevokeServiceToken", {"id": issued["token"]["id"]})

    assert revoked["revoked"] is True and again == revoked
    result = grpcurl(
        controlplane.addr,
        "prism.v1.Keys/ValidateKey",
        data=json.dumps({"api_key": "sk-prism-anything"}),
        token=issued["secret"],
    )
    refused(result, "Unauthenticated", "neither a service token")


def test_update_with_a_field_mask(controlplane: ControlPlane) -> None:
    call(
        controlplane,
        "prism.v1.Admin/CreateOrg",
        {"org_id": "grpcurl-mask", "org": {"display_name": "Kept"}},
    )
    updated = call(
        controlplane,
        "prism.v1.Admin/UpdateOrg",
        {
            "org": {"id": "grpcurl-mask", "policy": {"allowed_models": ["gpt-4o*"]}},
            "update_mask": {"paths": ["policy.allowed_models"]},
        },
    )
    assert updated["policy"] == {"allowed_models": ["gpt-4o*"]}
    assert updated["display_name"] == "Kept"

    # Mask paths name proto fields, in snake_case, even where the JSON body uses camelCase.
    camel = grpcurl(
        controlplane.addr,
        "prism.v1.Admin/UpdateOrg",
        data=json.dumps(
            {"org": {"id": "grpcurl-mask"}, "updateMask": {"paths": ["policy.allowedModels"]}}
        ),
        token=controlplane.admin_token,
    )
    refused(camel, "InvalidArgument", "cannot update policy.allowedModels", "allowed_models")


def test_list_orgs_page_by_page(controlplane: ControlPlane) -> None:
    for suffix in ("a", "b", "c"):
        call(controlplane, "prism.v1.Admin/CreateOrg", {"org_id": f"grpcurl-page-{suffix}"})

    seen: list[str] = []
    body: dict[str, Any] = {"page_size": 2}
    while True:
        page = call(controlplane, "prism.v1.Admin/ListOrgs", body)
        seen += [org["id"] for org in page.get("orgs", [])]
        if not page.get("next_page_token"):
            break
        body = {"page_size": 2, "page_token": page["next_page_token"]}

    assert seen == sorted(set(seen))
    assert {"grpcurl-page-a", "grpcurl-page-b", "grpcurl-page-c"} <= set(seen)


def test_admin_calls_without_the_right_token_are_refused(controlplane: ControlPlane) -> None:
    missing = grpcurl(controlplane.addr, "prism.v1.Admin/ListOrgs", data="{}")
    refused(missing, "Unauthenticated", "PRISM_ADMIN_TOKEN")

    wrong = grpcurl(controlplane.addr, "prism.v1.Admin/ListOrgs", data="{}", token="not-it")
    refused(wrong, "Unauthenticated", "PRISM_ADMIN_TOKEN")


def test_errors_carry_status_and_an_actionable_message(controlplane: ControlPlane) -> None:
    result = grpcurl(
        controlplane.addr,
        "prism.v1.Admin/GetOrg",
        data='{"id": "no-such-org"}',
        token=controlplane.admin_token,
    )
    refused(result, "NotFound", "org 'no-such-org' not found")

    past = grpcurl(
        controlplane.addr,
        "prism.v1.Admin/CreateKey",
        data='{"key": {"org_id": "no-such-org", "expire_time": "2001-01-01T00:00:00Z"}}',
        token=controlplane.admin_token,
    )
    refused(past, "InvalidArgument", "expire_time 2001-01-01T00:00:00+00:00 is not in the future")


def test_limits_budgets_and_read_only_as_the_readme_sets_them(controlplane: ControlPlane) -> None:
    org = call(controlplane, "prism.v1.Admin/CreateOrg", {"org": {"display_name": "Limits"}})
    policy = {
        "rate_limits": {
            "requests_per_minute": {"limit": 3000},
            "tokens_per_minute": {"limit": 400000},
        },
        "budgets": {"daily_usd": 50, "monthly_usd": 1000},
    }

    updated = call(
        controlplane,
        "prism.v1.Admin/UpdateOrg",
        {
            "org": {"id": org["id"], "policy": policy},
            "update_mask": {"paths": ["policy.rate_limits", "policy.budgets"]},
        },
    )
    key = call(controlplane, "prism.v1.Admin/CreateKey", {"key": {"org_id": org["id"]}})["key"]
    key_policy = {
        "read_only": True,
        "rate_limits": {
            "requests_per_minute": {"limit": 60, "shadow": True},
            "concurrent_requests": {"limit": 4},
        },
    }
    updated_key = call(
        controlplane,
        "prism.v1.Admin/UpdateKey",
        {"key": {"id": key["id"], "policy": key_policy}, "update_mask": {"paths": ["policy"]}},
    )

    # grpcurl prints proto field names and int64 values as strings, and leaves unset ones out.
    assert updated["policy"]["rate_limits"] == {
        "requests_per_minute": {"limit": "3000"},
        "tokens_per_minute": {"limit": "400000"},
    }
    assert updated["policy"]["budgets"] == {"daily_usd": 50, "monthly_usd": 1000}
    assert updated_key["policy"]["read_only"] is True
    assert updated_key["policy"]["rate_limits"] == {
        "requests_per_minute": {"limit": "60", "shadow": True},
        "concurrent_requests": {"limit": "4"},
    }


def test_set_upstream_credential_needs_a_master_key_and_is_never_shown(
    controlplane: ControlPlane, start_controlplane: Any
) -> None:
    without_key = grpcurl(
        controlplane.addr,
        "prism.v1.Admin/SetUpstreamCredential",
        data=json.dumps({"org_id": "any-org", "api_key": "sk-own"}),
        token=controlplane.admin_token,
    )
    sealing = start_controlplane(PRISM_MASTER_KEY="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
    org = call(sealing, "prism.v1.Admin/CreateOrg", {"org": {"display_name": "BYO"}})

    reply = call(
        sealing,
        "prism.v1.Admin/SetUpstreamCredential",
        {"org_id": org["id"], "api_key": "sk-own-upstream-key"},
    )
    fetched = call(sealing, "prism.v1.Admin/GetOrg", {"id": org["id"]})

    refused(without_key, "FailedPrecondition", "PRISM_MASTER_KEY")
    assert reply["has_upstream_credential"] is True
    assert fetched["has_upstream_credential"] is True
    assert "sk-own-upstream-key" not in json.dumps(reply) + json.dumps(fetched)


def test_prices_and_usage_as_the_readme_sets_and_reads_them(
    controlplane: ControlPlane, dataplane: DataPlane
) -> None:
    price = call(
        controlplane,
        "prism.v1.Admin/SetModelPrice",
        {
            "model": "grpcurl-model",
            "input_usd_per_million": 2.5,
            "cached_input_usd_per_million": 1.25,
            "output_usd_per_million": 10,
        },
    )
    listed = call(controlplane, "prism.v1.Admin/ListModelPrices", {})
    fees = call(
        controlplane,
        "prism.v1.Admin/SetToolFees",
        {
            "file_search_usd_per_thousand_calls": 2.5,
            "vector_store_usd_per_gb_day": 0.1,
            "code_interpreter_usd_per_session": 0.03,
        },
    )
    org = call(controlplane, "prism.v1.Admin/CreateOrg", {"org": {"display_name": "Usage"}})
    issued = call(controlplane, "prism.v1.Admin/CreateKey", {"key": {"org_id": org["id"]}})
    sdk = openai.OpenAI(base_url=dataplane.url, api_key=issued["secret"], max_retries=0)
    sdk.beta.assistants.create(model="grpcurl-model")
    usage = call(
        controlplane,
        "prism.v1.Admin/GetUsage",
        {"org_id": org["id"], "group_by": ["USAGE_GROUPING_DAY", "USAGE_GROUPING_MODEL"]},
    )
    bad = grpcurl(
        controlplane.addr,
        "prism.v1.Admin/SetModelPrice",
        data=json.dumps({"model": "grpcurl-model", "input_usd_per_million": -1}),
        token=controlplane.admin_token,
    )

    assert price == {
        "model": "grpcurl-model",
        "input_usd_per_million": 2.5,
        "cached_input_usd_per_million": 1.25,
        "output_usd_per_million": 10,
        "custom": True,
    }
    assert price in listed["prices"]
    assert listed["tool_fees"] == fees
    (row,) = usage["rows"]
    assert (row["model"], row["requests"]) == ("grpcurl-model", "1")
    assert usage["total"]["requests"] == "1"
    refused(bad, "InvalidArgument", "input_usd_per_million must be a finite amount")


def test_request_logs_as_the_readme_reads_them(
    controlplane: ControlPlane, dataplane: DataPlane
) -> None:
    org = call(controlplane, "prism.v1.Admin/CreateOrg", {"org": {"display_name": "Logs"}})
    updated = call(
        controlplane,
        "prism.v1.Admin/UpdateOrg",
        {
            "org": {
                "id": org["id"],
                "request_logging": {"bodies": "BODY_LOGGING_FULL", "max_body_bytes": 65536},
            },
            "update_mask": {"paths": ["request_logging"]},
        },
    )
    issued = call(controlplane, "prism.v1.Admin/CreateKey", {"key": {"org_id": org["id"]}})
    sdk = openai.OpenAI(base_url=dataplane.url, api_key=issued["secret"], max_retries=0)
    thread = sdk.beta.threads.create()
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.beta.threads.runs.create(thread_id="thread_missing", assistant_id="asst_missing")
    request_id = missing.value.response.headers["x-prism-request-id"]
    query = {
        "org_id": org["id"],
        "status": 404,
        "route": "POST /v1/threads/{thread_id}/runs",
        "start_time": "2020-01-01T00:00:00Z",
        "page_size": 100,
    }
    deadline = time.monotonic() + 15
    while not (listed := call(controlplane, "prism.v1.Admin/ListRequestLogs", query)):
        assert time.monotonic() < deadline, "the request was not logged"
        time.sleep(0.1)
    got = call(controlplane, "prism.v1.Admin/GetRequestLog", {"request_id": request_id})
    gone = grpcurl(
        controlplane.addr,
        "prism.v1.Admin/GetRequestLog",
        data=json.dumps({"request_id": "req_never"}),
        token=controlplane.admin_token,
    )

    assert updated["request_logging"] == {"bodies": "BODY_LOGGING_FULL", "max_body_bytes": "65536"}
    assert [entry["request_id"] for entry in listed["logs"]] == [request_id]
    assert got == listed["logs"][0]
    assert (got["status"], got["key_id"]) == (404, issued["key"]["id"])
    assert "thread_missing" in got["path"] and thread.id not in got["path"]
    refused(gone, "NotFound", "req_never")
