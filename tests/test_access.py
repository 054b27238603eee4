"""A key's and its org's access rules, as an application using the SDK meets them through
the gateway: what is allowed reaches the upstream, what is denied is a 403 (or 401 for a
key that no longer works) and reaches nothing."""

from datetime import UTC, datetime, timedelta

import openai
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from prism.v1 import admin_pb2
from tests.conftest import AdminClient, FakeUpstream, IssueKey, Sdk


def assert_denied_and_not_forwarded(
    error: pytest.ExceptionInfo[openai.APIStatusError], upstream: FakeUpstream, *says: str
) -> None:
    body = error.value.body
    assert isinstance(body, dict)
    assert body["type"] == "permission_denied"
    for fragment in says:
        assert fragment in body["message"]
    assert upstream.requests() == []


def test_a_model_glob_allows_matching_models_and_denies_others(
    issue_key: IssueKey, sdk: Sdk, fake_upstream: FakeUpstream
) -> None:
    _, issued = issue_key(allowed_models=["gpt-4o*"])
    client = sdk(issued.secret)
    assert client.beta.assistants.create(model="gpt-4o-mini").model == "gpt-4o-mini"
    fake_upstream.clear_requests()

    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.beta.assistants.create(model="gpt-4")

    assert denied.value.status_code == 403
    assert denied.value.param == "model"
    assert_denied_and_not_forwarded(denied, fake_upstream, "gpt-4", "key", "gpt-4o*")


def test_every_model_a_request_names_is_checked(
    issue_key: IssueKey, sdk: Sdk, fake_upstream: FakeUpstream
) -> None:
    _, issued = issue_key(allowed_models=["gpt-4o"])
    client = sdk(issued.secret)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    fake_upstream.clear_requests()

    denials = [
        lambda: client.beta.assistants.update(assistant.id, model="o3"),
        lambda: client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, model="o3"),
        lambda: client.beta.threads.create_and_run(assistant_id=assistant.id, model="o3"),
    ]
    for attempt in denials:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            attempt()
        assert_denied_and_not_forwarded(denied, fake_upstream, "o3")


def test_the_orgs_model_rule_applies_although_the_key_allows_the_model(
    issue_key: IssueKey, sdk: Sdk, fake_upstream: FakeUpstream
) -> None:
    _, issued = issue_key(
        org_policy=admin_pb2.Policy(allowed_models=["gpt-4o-mini"]), allowed_models=["gpt-4o*"]
    )
    fake_upstream.clear_requests()

    with pytest.raises(openai.PermissionDeniedError) as denied:
        sdk(issued.secret).beta.assistants.create(model="gpt-4o")

    assert_denied_and_not_forwarded(denied, fake_upstream, "org", "gpt-4o-mini")


def test_a_client_address_outside_the_keys_ranges_is_denied(
    issue_key: IssueKey, sdk: Sdk, fake_upstream: FakeUpstream
) -> None:
    _, inside = issue_key(allowed_ip_ranges=["127.0.0.0/8", "::1/128"])
    assert sdk(inside.secret).beta.assistants.list().object == "list"
    _, outside = issue_key(allowed_ip_ranges=["10.0.0.0/8"])
    fake_upstream.clear_requests()

    with pytest.raises(openai.PermissionDeniedError) as denied:
        sdk(outside.secret).beta.assistants.list()

    assert_denied_and_not_forwarded(denied, fake_upstream, "127.0.0.1", "10.0.0.0/8")


def test_an_expired_key_is_401(
    admin: AdminClient, issue_key: IssueKey, sdk: Sdk, fake_upstream: FakeUpstream
) -> None:
    _, issued = issue_key()
    client = sdk(issued.secret)
    assert client.beta.assistants.list().object == "list"
    soon = Timestamp()
    soon.FromDatetime(datetime.now(UTC) + timedelta(seconds=1))
    admin.UpdateKey(
        admin_pb2.UpdateKeyRequest(
            key=admin_pb2.Key(id=issued.key.id, expire_time=soon),
            update_mask={"paths": ["expire_time"]},
        )
    )
    with pytest.raises(openai.AuthenticationError, match="expired"):
        _poll_until_denied(client)
    fake_upstream.clear_requests()

    with pytest.raises(openai.AuthenticationError, match="expired"):
        client.beta.assistants.list()
    assert fake_upstream.requests() == []


def _poll_until_denied(client: openai.OpenAI) -> None:
    """Lists until the gateway refuses; the key expires a second after it was updated."""
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while datetime.now(UTC) < deadline:
        client.beta.assistants.list()
    raise AssertionError("the key still worked 10 s after it expired")
