"""The control plane's policy decisions, asked over gRPC the way the data plane asks them:
limits, budgets, ownership, an assistant's model and read-only keys, each allowed and denied.
What the SDK then sees of them is tested through the gateway in test_policy_gateway.py.
"""

import asyncio
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import grpc
import pytest

from controlplane.charges import Charges
from prism import redis_client
from prism.v1 import admin_pb2, authorizer_pb2
from tests.conftest import AdminClient, AuthorizerClient, ControlPlane, IssueKey

# Also on a Redis Cluster (tests/conftest.py).
pytestmark = pytest.mark.redis_cluster

ASSISTANT = authorizer_pb2.OBJECT_KIND_ASSISTANT
THREAD = authorizer_pb2.OBJECT_KIND_THREAD
FILE = authorizer_pb2.OBJECT_KIND_FILE
RUN = authorizer_pb2.OBJECT_KIND_RUN


class Authorizer:
    """The Authorizer stub as the data plane calls it, with Check's request spelled as
    keyword arguments, and each grant's Records numbered in the order they are sent."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = AuthorizerClient(channel)
        self._requests = 0
        self._records: Counter[str] = Counter()

    def check(
        self,
        api_key: str,
        method: str = "POST",
        route: str = "POST /v1/threads/{thread_id}/messages",
        models: Sequence[str] = (),
        objects: Sequence[authorizer_pb2.ObjectRef] = (),
        model_object_id: str = "",
        uses_model: bool = False,
        request_id: str = "",
    ) -> authorizer_pb2.CheckResponse:
        self._requests += 1
        return self._stub.Check(
            authorizer_pb2.CheckRequest(
                api_key=api_key,
                client_ip="127.0.0.1",
                method=method,
                route=route,
                models=models,
                objects=objects,
                model_object_id=model_object_id,
                uses_model=uses_model,
                request_id=request_id or f"req_policy_{self._requests}",
            )
        )

    def grant(self, api_key: str) -> str:
        return self._stub.grant(api_key)

    def record(self, grant: str, **fields: object) -> authorizer_pb2.RecordResponse:
        sequence = self._records[grant]
        self._records[grant] += 1
        return self._stub.Record(
            authorizer_pb2.RecordRequest(grant=grant, sequence=sequence, **fields)
        )

    def filter_owned(self, grant: str, ids: Sequence[str]) -> list[str]:
        return list(
            self._stub.FilterOwned(authorizer_pb2.FilterOwnedRequest(grant=grant, ids=ids)).ids
        )


@pytest.fixture(scope="module")
def authorizer(controlplane: ControlPlane) -> Iterator[Authorizer]:
    with grpc.insecure_channel(controlplane.addr) as channel:
        yield Authorizer(channel)


def limits(**per_minute: int | tuple[int, bool]) -> admin_pb2.RateLimits:
    """`limits(requests_per_minute=3, tokens_per_minute=(100, True))`: a tuple sets shadow."""
    fields = {}
    for name, value in per_minute.items():
        limit, shadow = value if isinstance(value, tuple) else (value, False)
        fields[name] = admin_pb2.RateLimit(limit=limit, shadow=shadow)
    return admin_pb2.RateLimits(**fields)


def ref(object_id: str, kind: int, param: str = "") -> authorizer_pb2.ObjectRef:
    return authorizer_pb2.ObjectRef(id=object_id, kind=kind, param=param)


# Rate limits


def test_requests_per_minute_allow_a_burst_of_the_limit_then_refuse(
    issue_key: IssueKey, authorizer: Authorizer
) -> None:
    _, issued = issue_key(rate_limits=limits(requests_per_minute=3))

    answers = [authorizer.check(issued.secret) for _ in range(4)]

    assert [answer.allowed for answer in answers] == [True, True, True, False]
    assert [answer.requests.remaining for answer in answers] == [2, 1, 0, 0]
    assert all(answer.requests.limit == 3 for answer in answers)
    # One request frees up every 20 s; the reset is when all three have.
    assert 0 < answers[-1].requests.reset_ms <= 60_000
    denial = answers[-1].denial
    assert (denial.http_status, denial.type, denial.code) == (
        429,
        "requests",
        "rate_limit_exceeded",
    )
    assert "requests per minute" in denial.message and "this key" in denial.message
    assert 19_000 < denial.retry_after_ms <= 20_000
    assert not denial.do_not_retry


def test_the_orgs_limit_counts_every_key_and_the_tighter_limit_is_reported(
    admin: AdminClient, issue_key: IssueKey, authorizer: Authorizer
) -> None:
    org, first = issue_key(
        org_policy=admin_pb2.Policy(rate_limits=limits(requests_per_minute=3)),
        rate_limits=limits(requests_per_minute=10),
    )
    second = admin.CreateKey(admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org.id)))

    answers = [authorizer.check(key.secret) for key in (first, second, first, second)]

    assert [answer.allowed for answer in answers] == [True, True, True, False]
    assert (answers[0].requests.limit, answers[0].requests.remaining) == (3, 2)
    assert "this org" in answers[-1].denial.message


def test_a_shadow_limit_is_reported_but_never_enforced(
    issue_key: IssueKey, authorizer: Authorizer
) -> None:
    _, issued = issue_key(rate_limits=limits(requests_per_minute=(1, True)))

    answers = [authorizer.check(issued.secret) for _ in range(3)]

    assert all(answer.allowed for answer in answers)
    assert [list(answer.shadow_exceeded) for answer in answers] == [
        [],
        ["key requests_per_minute"],
        ["key requests_per_minute"],
    ]
    assert answers[-1].requests.remaining == 0


def test_concurrent_requests_hold_a_slot_until_recorded_finished(
    issue_key: IssueKey, authorizer: Authorizer
) -> None:
    _, issued = issue_key(rate_limits=limits(concurrent_requests=2))

    first, second, third = (
        authorizer.check(issued.secret, request_id=f"req_slot_{i}") for i in range(3)
    )

    assert first.allowed and second.allowed and first.record_wanted
    # The default lease (PRISM_SLOT_LEASE_SECONDS), which its data plane renews.
    assert first.slot_lease_ms == 10_000
    assert not third.allowed and third.denial.http_status == 429
    assert "concurrent requests" in third.denial.message
    authorizer.record(first.grant, finished=True)
    fourth = authorizer.check(issued.secret)
    assert fourth.allowed


def test_a_request_holding_no_slot_has_no_lease(
    issue_key: IssueKey, authorizer: Authorizer
) -> None:
    _, issued = issue_key(rate_limits=limits(requests_per_minute=100))

    answer = authorizer.check(issued.secret)

    assert answer.allowed and not answer.record_wanted
    assert answer.slot_lease_ms == 0


def test_tokens_count_once_per_run_and_limit_only_model_work(
    issue_key: IssueKey, authorizer: Authorizer
) -> None:
    _, issued = issue_key(rate_limits=limits(tokens_per_minute=1000))
    run = authorizer_pb2.RunUsage(run_id="run_tpm_once", total_tokens=600)
    created = [authorizer_pb2.OwnedObject(id=run.run_id, kind=RUN, thread_id="thread_tpm")]

    before = authorizer.check(issued.secret, uses_model=True)
    authorizer.record(before.grant, objects=created, runs=[run])
    authorizer.record(before.grant, runs=[run])  # the same run polled again
    after_one = authorizer.check(issued.secret, uses_model=True)
    second = authorizer_pb2.RunUsage(run_id="run_tpm_2", total_tokens=600)
    authorizer.record(
        after_one.grant,
        objects=[authorizer_pb2.OwnedObject(id=second.run_id, kind=RUN)],
        runs=[second],
    )
    over = authorizer.check(issued.secret, uses_model=True)
    reading = authorizer.check(issued.secret, method="GET", uses_model=False)

    assert (before.tokens.limit, before.tokens.remaining) == (1000, 1000)
    assert after_one.allowed and after_one.tokens.remaining in (400, 401)
    assert not over.allowed
    assert (over.denial.http_status, over.denial.type) == (429, "tokens")
    assert "tokens per minute" in over.denial.message
    # 1200 tokens against 1000 a minute: the next token frees up after about 12 s.
    assert 11_000 < over.denial.retry_after_ms <= 12_100
    # Reading starts no model work: told that no tokens are left, but not refused.
    assert reading.allowed and reading.tokens.remaining == 0


# Budgets


def _spend(redis_url: str, org_id: str, key_id: str, usd: float) -> None:
    """Raises the spend that cost tracking will record, through the control plane's store."""

    async def add() -> None:
        client = redis_client.async_client(redis_url, decode_responses=True)
        async with client:
            await Charges(client).add_spend(org_id, key_id, round(usd * 1e6), datetime.now(UTC))

    asyncio.run(add())


@pytest.mark.parametrize("period", ["daily_usd", "monthly_usd", "total_usd"])
def test_a_spent_budget_refuses_with_insufficient_quota(
    period: str, issue_key: IssueKey, authorizer: Authorizer, redis_url: str
) -> None:
    org, issued = issue_key(budgets=admin_pb2.Budgets(**{period: 5.0}))

    under = authorizer.check(issued.secret)
    _spend(redis_url, org.id, issued.key.id, 4.99)
    still_under = authorizer.check(issued.secret)
    _spend(redis_url, org.id, issued.key.id, 0.01)
    over = authorizer.check(issued.secret)

    assert under.allowed and still_under.allowed
    denial = over.denial
    assert (denial.http_status, denial.type, denial.code) == (
        429,
        "insufficient_quota",
        "insufficient_quota",
    )
    assert denial.do_not_retry
    assert "$5.00" in denial.message and period.removesuffix("_usd") in denial.message


def test_an_org_budget_counts_the_spend_of_all_its_keys(
    admin: AdminClient, issue_key: IssueKey, authorizer: Authorizer, redis_url: str
) -> None:
    org, first = issue_key(org_policy=admin_pb2.Policy(budgets=admin_pb2.Budgets(daily_usd=1)))
    second = admin.CreateKey(admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org.id)))

    _spend(redis_url, org.id, first.key.id, 1.0)

    denial = authorizer.check(second.secret).denial
    assert denial.code == "insufficient_quota" and "this org's daily budget" in denial.message


# Ownership


def test_objects_are_owned_by_the_org_that_created_them(
    issue_key: IssueKey, authorizer: Authorizer
) -> None:
    _, mine = issue_key()
    _, theirs = issue_key()
    authorizer.record(
        authorizer.grant(mine.secret),
        objects=[authorizer_pb2.OwnedObject(id="thread_owned_1", kind=THREAD)],
    )
    thread = [ref("thread_owned_1", THREAD)]

    assert authorizer.check(mine.secret, objects=thread).allowed
    foreign = authorizer.check(theirs.secret, objects=thread).denial
    assert (foreign.http_status, foreign.message) == (
        404,
        "No thread found with id 'thread_owned_1'.",
    )
    assert foreign.code == "" and foreign.param == ""


def test_a_body_reference_to_an_unowned_file_is_the_upstreams_404_naming_the_param(
    issue_key: IssueKey, authorizer: Authorizer
) -> None:
    _, issued = issue_key()

    denial = authorizer.check(issued.secret, objects=[ref("file-nobody", FILE, "file_ids")]).denial

    assert (denial.http_status, denial.message, denial.param) == (
        404,
        "No such File object: file-nobody",
        "file_ids",
    )


def test_an_object_of_another_kind_with_that_id_is_not_owned(
    issue_key: IssueKey, authorizer: Authorizer
) -> None:
    _, issued = issue_key()
    authorizer.record(
        authorizer.grant(issued.secret),
        objects=[authorizer_pb2.OwnedObject(id="obj_1", kind=RUN)],
    )

    assert authorizer.check(issued.secret, objects=[ref("obj_1", THREAD)]).denial.http_status == 404


def test_a_deleted_object_is_owned_no_more(issue_key: IssueKey, authorizer: Authorizer) -> None:
    _, issued = issue_key()
    grant = authorizer.grant(issued.secret)
    authorizer.record(grant, objects=[authorizer_pb2.OwnedObject(id="asst_gone", kind=ASSISTANT)])
    authorizer.record(grant, deleted_ids=["asst_gone"])

    denial = authorizer.check(issued.secret, objects=[ref("asst_gone", ASSISTANT)]).denial

    assert denial.message == "No assistant found with id 'asst_gone'."


def test_filter_owned_keeps_the_orgs_ids_in_order(
    issue_key: IssueKey, authorizer: Authorizer
) -> None:
    _, issued = issue_key()
    grant = authorizer.grant(issued.secret)
    authorizer.record(
        grant,
        objects=[
            authorizer_pb2.OwnedObject(id=f"asst_f{i}", kind=ASSISTANT, model="gpt-4o")
            for i in (1, 3)
        ],
    )

    owned = authorizer.filter_owned(grant, ["asst_f3", "asst_f2", "asst_f1", "asst_f4"])

    assert owned == ["asst_f3", "asst_f1"]


# An assistant's model, when a run names none


def _assistant(authorizer: Authorizer, grant: str, model: str) -> None:
    authorizer.record(
        grant, objects=[authorizer_pb2.OwnedObject(id="asst_model", kind=ASSISTANT, model=model)]
    )


def test_a_run_without_a_model_is_checked_against_its_assistants_model(
    issue_key: IssueKey, authorizer: Authorizer
) -> None:
    _, issued = issue_key(allowed_models=["gpt-4o-mini"])
    grant = authorizer.grant(issued.secret)
    run = {
        "route": "POST /v1/threads/{thread_id}/runs",
        "objects": [ref("asst_model", ASSISTANT, "assistant_id")],
        "model_object_id": "asst_model",
        "uses_model": True,
    }

    _assistant(authorizer, grant, "gpt-4o-mini")
    allowed = authorizer.check(issued.secret, **run)
    _assistant(authorizer, grant, "gpt-4o")  # modified through the gateway
    denied = authorizer.check(issued.secret, **run)
    overridden = authorizer.check(issued.secret, models=["gpt-4o-mini"], **run)

    assert allowed.allowed
    assert (denied.denial.http_status, denied.denial.code) == (403, "permission_denied")
    assert "model 'gpt-4o' is not allowed for this key" in denied.denial.message
    assert overridden.allowed


# Read-only keys


def test_a_read_only_key_may_only_get(issue_key: IssueKey, authorizer: Authorizer) -> None:
    _, issued = issue_key(read_only=True)

    reading = authorizer.check(issued.secret, method="GET", route="GET /v1/assistants")
    writing = authorizer.check(issued.secret, method="DELETE", route="DELETE /v1/files/{file_id}")

    assert reading.allowed
    assert (writing.denial.http_status, writing.denial.type) == (403, "permission_denied")
    assert "read-only" in writing.denial.message and "DELETE" in writing.denial.message


# Changes apply on the next request


def test_a_policy_change_applies_to_the_next_request(
    admin: AdminClient, issue_key: IssueKey, authorizer: Authorizer
) -> None:
    _, issued = issue_key(read_only=True)
    assert not authorizer.check(issued.secret).allowed

    admin.UpdateKey(
        admin_pb2.UpdateKeyRequest(
            key=admin_pb2.Key(id=issued.key.id, policy=admin_pb2.Policy(read_only=False)),
            update_mask={"paths": ["policy.read_only"]},
        )
    )
    assert authorizer.check(issued.secret).allowed

    admin.RevokeKey(admin_pb2.RevokeKeyRequest(id=issued.key.id))
    revoked = authorizer.check(issued.secret)
    assert (revoked.denial.http_status, revoked.denial.code) == (401, "invalid_api_key")
