"""Budgets as an OpenAI SDK user meets them through the gateway: once spent, they refuse
only the requests that can add cost (reads, deletes and cancels still work), and their
refusals show amounts exactly."""

import openai
import pytest

from prism.v1 import admin_pb2
from tests.conftest import IssueKey, Sdk
from tests.test_policy_check import _spend

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def test_a_spent_budget_still_lets_the_key_read_delete_and_cancel(
    issue_key: IssueKey, sdk: Sdk, redis_url: str
) -> None:
    org, issued = issue_key(budgets=admin_pb2.Budgets(daily_usd=0.0005))
    client = sdk(issued.secret)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
    waiting = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id
    )
    spare = client.beta.threads.create()
    assert waiting.status == "requires_action"
    _spend(redis_url, org.id, issued.key.id, 0.0015)

    assert client.beta.assistants.retrieve(assistant.id).id == assistant.id
    assert [a.id for a in client.beta.assistants.list()] == [assistant.id]
    assert client.beta.threads.runs.retrieve(waiting.id, thread_id=thread.id).id == waiting.id
    assert client.beta.threads.messages.list(thread.id).data
    cancelled = client.beta.threads.runs.cancel(waiting.id, thread_id=thread.id)
    assert cancelled.status in ("cancelling", "cancelled")
    assert client.beta.threads.delete(spare.id).deleted
    with pytest.raises(openai.RateLimitError) as refused:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)

    assert refused.value.code == "insufficient_quota"
    assert "this key's daily budget of $0.0005 is spent ($0.0015 used)" in refused.value.message
    with pytest.raises(openai.RateLimitError):
        client.beta.threads.create()


@pytest.mark.parametrize(
    ("budget_usd", "spent_usd", "shown"),
    [
        (2, 2.5, "budget of $2.00 is spent ($2.50 used)"),
        (0.000001, 0.000002, "budget of $0.000001 is spent ($0.000002 used)"),
        (1234.5, 1234.500001, "budget of $1,234.50 is spent ($1,234.500001 used)"),
    ],
)
def test_a_budget_refusal_shows_its_amounts_exactly(
    issue_key: IssueKey,
    sdk: Sdk,
    redis_url: str,
    budget_usd: float,
    spent_usd: float,
    shown: str,
) -> None:
    org, issued = issue_key(
        org_policy=admin_pb2.Policy(budgets=admin_pb2.Budgets(total_usd=budget_usd))
    )
    _spend(redis_url, org.id, issued.key.id, spent_usd)

    with pytest.raises(openai.RateLimitError) as refused:
        sdk(issued.secret).beta.assistants.create(model="gpt-4o")

    assert f"this org's total {shown}" in refused.value.message
