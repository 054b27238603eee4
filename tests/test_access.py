"""A key's and its org's access rules, as an application using the SDK meets them through
the gateway: what is allowed reaches the upstream, what is denied is a 403 (or 401 for a
key that no longer works) and reaches nothing."""

from datetime import UTC, datetime, timedelta

import openai
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from prism.v1 import admin_pb2
from tests.conftest import AdminClient, IssueKey, Sdk, Upstream
from tests.test_sdk_scenarios import WEATHER_TOOL


def assert_denied_and_not_forwarded(
    error: pytest.ExceptionInfo[openai.APIStatusError], upstream: Upstream, *says: str
) -> None:
    body = error.value.body
    assert isinstance(body, dict)
    assert body["type"] == "permission_denied"
    for fragment in says:
        assert fragment in body["message"]
    assert upstream.requests() == []


def test_a_model_glob_allows_matching_models_and_denies_others(
    issue_key: IssueKey, sdk: Sdk, shared_upstream: Upstream
) -> None:
    _, issued = issue_key(allowed_models=["gpt-4o*"])
    client = sdk(issued.secret)
    assert client.beta.assistants.create(model="gpt-4o-mini").model == "gpt-4o-mini"
    shared_upstream.clear_requests()

    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.beta.assistants.create(model="gpt-4")

    assert denied.value.status_code == 403
    assert denied.value.param == "model"
    assert_denied_and_not_forwarded(denied, shared_upstream, "gpt-4", "key", "gpt-4o*")


def test_every_model_a_request_names_is_checked(
    issue_key: IssueKey, sdk: Sdk, shared_upstream: Upstream
) -> None:
    _, issued = issue_key(allowed_models=["gpt-4o"])
    client = sdk(issued.secret)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    shared_upstream.clear_requests()

    denials = [
        lambda: client.beta.assistants.update(assistant.id, model="o3"),
        lambda: client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, model="o3"),
        lambda: client.beta.threads.create_and_run(assistant_id=assistant.id, model="o3"),
    ]
    for attempt in denials:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            attempt()
        assert_denied_and_not_forwarded(denied, shared_upstream, "o3")


def test_the_orgs_model_rule_applies_although_the_key_allows_the_model(
    issue_key: IssueKey, sdk: Sdk, shared_upstream: Upstream
) -> None:
    _, issued = issue_key(
        org_policy=admin_pb2.Policy(allowed_models=["gpt-4o-mini"]), allowed_models=["gpt-4o*"]
    )
    shared_upstream.clear_requests()

    with pytest.raises(openai.PermissionDeniedError) as denied:
        sdk(issued.secret).beta.assistants.create(model="gpt-4o")

    assert_denied_and_not_forwarded(denied, shared_upstream, "org", "gpt-4o-mini")


def test_a_client_address_outside_the_keys_ranges_is_denied(
    issue_key: IssueKey, sdk: Sdk, shared_upstream: Upstream
) -> None:
    _, inside = issue_key(allowed_ip_ranges=["127.0.0.0/8", "::1/128"])
    assert sdk(inside.secret).beta.assistants.list().object == "list"
    _, outside = issue_key(allowed_ip_ranges=["10.0.0.0/8"])
    shared_upstream.clear_requests()

    with pytest.raises(openai.PermissionDeniedError) as denied:
        sdk(outside.secret).beta.assistants.list()

    assert_denied_and_not_forwarded(denied, shared_upstream, "127.0.0.1", "10.0.0.0/8")


def test_an_expired_key_is_401(
    admin: AdminClient, issue_key: IssueKey, sdk: Sdk, shared_upstream: Upstream
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
    shared_upstream.clear_requests()

    with pytest.raises(openai.AuthenticationError, match="expired"):
        client.beta.assistants.list()
    assert shared_upstream.requests() == []


def _poll_until_denied(client: openai.OpenAI) -> None:
    """Lists until the gateway refuses; the key expires a second after it was updated."""
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while datetime.now(UTC) < deadline:
        client.beta.assistants.list()
    raise AssertionError("the key still worked 10 s after it expired")


# Model work on another key's objects: every route that sets a model to work checks it


@pytest.fixture
def narrow_and_wide(
    issue_key: IssueKey, admin: AdminClient, sdk: Sdk
) -> tuple[openai.OpenAI, openai.OpenAI]:
    """Two SDK clients of one org: `wide` may use any model, `narrow` only gpt-4o-mini."""
    org, wide = issue_key()
    narrow = admin.CreateKey(
        admin_pb2.CreateKeyRequest(
            key=admin_pb2.Key(
                org_id=org.id, policy=admin_pb2.Policy(allowed_models=["gpt-4o-mini"])
            )
        )
    )
    return sdk(narrow.secret), sdk(wide.secret)


def test_tool_outputs_resume_a_run_only_for_a_key_allowed_its_model(
    narrow_and_wide: tuple[openai.OpenAI, openai.OpenAI], shared_upstream: Upstream
) -> None:
    narrow, wide = narrow_and_wide
    assistant = wide.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    thread = wide.beta.threads.create(
        messages=[{"role": "user", "content": "What's the weather in Paris?"}]
    )
    run = wide.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    outputs = [
        {"tool_call_id": run.required_action.submit_tool_outputs.tool_calls[0].id, "output": "22C"}
    ]
    shared_upstream.clear_requests()

    for stream in (False, True):
        with pytest.raises(openai.PermissionDeniedError) as denied:
            narrow.beta.threads.runs.submit_tool_outputs(
                run.id, thread_id=thread.id, tool_outputs=outputs, stream=stream
            )
        assert_denied_and_not_forwarded(denied, shared_upstream, "gpt-4o", "gpt-4o-mini")

    resumed = wide.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=outputs
    )
    assert resumed.status == "completed"


def test_a_run_of_an_allowed_model_takes_tool_outputs_from_the_narrow_key(
    narrow_and_wide: tuple[openai.OpenAI, openai.OpenAI],
) -> None:
    narrow, wide = narrow_and_wide
    assistant = wide.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    thread = wide.beta.threads.create(
        messages=[{"role": "user", "content": "What's the weather in Oslo?"}]
    )
    run = narrow.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, model="gpt-4o-mini"
    )
    calls = run.required_action.submit_tool_outputs.tool_calls

    resumed = narrow.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": calls[0].id, "output": "3C"}],
    )

    assert resumed.status == "completed"


def test_a_run_naming_no_model_is_held_to_its_assistants_model_on_every_route(
    narrow_and_wide: tuple[openai.OpenAI, openai.OpenAI], shared_upstream: Upstream
) -> None:
    narrow, wide = narrow_and_wide
    assistant = wide.beta.assistants.create(model="gpt-4o")
    thread = wide.beta.threads.create()
    shared_upstream.clear_requests()

    attempts = [
        lambda: narrow.beta.threads.runs.create(thread.id, assistant_id=assistant.id),
        lambda: narrow.beta.threads.runs.create(thread.id, assistant_id=assistant.id, stream=True),
        lambda: narrow.beta.threads.create_and_run(assistant_id=assistant.id),
        lambda: narrow.beta.threads.create_and_run(assistant_id=assistant.id, stream=True),
    ]
    for attempt in attempts:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            attempt()
        assert_denied_and_not_forwarded(denied, shared_upstream, "gpt-4o", "gpt-4o-mini")
