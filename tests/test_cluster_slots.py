"""The scripts a request's decision, its slot's renewal and its record run work on Redis
Cluster: every key they touch carries the org's hash tag, so it lives in one slot.

A one-node cluster (all 16384 slots on one redis-server) refuses a script whose keys span
slots with CROSSSLOT, exactly as a real cluster does, so it is enough to prove the property.
Admin writes span slots (the global indexes): they are ordered single-slot steps, tested
with their repair paths on a 3-master cluster in test_redis_cluster.py.
"""

import asyncio
import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import redis.asyncio

from controlplane import keys, limiter
from controlplane.charges import Charges
from controlplane.check_script import CheckAnswer, CheckArgs, CheckOutcome, UsageArgs
from controlplane.decisions import Decisions
from controlplane.grants import Grant
from controlplane.pricing import RunCharge, StepCharge
from controlplane.records import Budgets, KeyRecord, OrgRecord, Policy, RateLimit, RateLimits
from controlplane.reservations import Reservation
from controlplane.run_queue import RunQueue
from controlplane.slot_leases import SlotLeases
from controlplane.storage_fees import StorageFeeClaims
from prism import redis_keys
from tools import stack


@pytest.fixture(scope="module")
def cluster_url(workdir: Path, logs: Path) -> Iterator[str]:
    port = stack.free_port()
    data = workdir / "cluster-redis"
    data.mkdir()
    process = stack.spawn(
        "redis-cluster",
        [
            "redis-server",
            "--bind", "127.0.0.1",
            "--port", str(port),
            # Else port + 10000, which does not exist for ports above 55535.
            "--cluster-port", str(stack.free_port()),
            "--dir", str(data),
            "--save", "",
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(data / "nodes.conf"),
        ],
        {},
        logs,
    )  # fmt: skip
    stack.wait_until_ready(process, port)
    client = redis.Redis(port=port, decode_responses=True)
    client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
    deadline = time.monotonic() + 10
    while "cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
        assert time.monotonic() < deadline, "the one-node cluster did not come up"
        time.sleep(0.05)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    process.stop()


def _records() -> tuple[KeyRecord, OrgRecord]:
    created = datetime.now(UTC)
    limited = RateLimits(
        requests_per_minute=RateLimit(100),
        tokens_per_minute=RateLimit(1000),
        concurrent_requests=RateLimit(10),
    )
    policy = Policy(rate_limits=limited, budgets=Budgets(total=1_000_000))
    org = OrgRecord("cluster-org", "Cluster", created, created, policy=policy)
    secret = keys.new_secret()
    key = KeyRecord(
        keys.new_key_id(), org.id, "k", keys.display_prefix(secret), keys.sha256(secret),
        created, created, policy=policy,
    )  # fmt: skip
    return key, org


async def _decide_and_record(url: str) -> tuple[CheckAnswer, list[str]]:
    """Check (with a budget reservation), Record (charging and finishing) and the sweeper
    giving a run up, on the cluster."""
    key, org = _records()
    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    async with client:
        key_json = json.dumps(key.to_json())
        org_json = json.dumps(org.to_json())
        await client.set(redis_keys.key(org.id, key.id), key_json)
        await client.set(redis_keys.org(org.id), org_json)
        charges, decisions = Charges(client), Decisions(client)
        await charges.record(
            org.id,
            key.id,
            "req_1",
            0,
            [("asst_1", "assistant", "gpt-4o", ""), ("run_1", "run", "", "thread_1")],
            [],
        )
        args = CheckArgs(
            key_digest=_sha1(key_json),
            org_digest=_sha1(org_json),
            refs=(("asst_1", "assistant"),),
            model_object="asst_1",
            model="gpt-4o",
            request_id="req_2",
            usage=UsageArgs(key_id=key.id, model="", model_object="asst_1"),
        )
        answer = await decisions.decide(
            org.id,
            key.id,
            args,
            limiter.budgets(key, org, datetime.now(UTC)),
            limiter.counters(key, org, uses_model=True, slot_lease_ms=10_000),
            # Tool outputs to run_1: its reservation, with its run hash.
            Reservation("run_1", 3560, by_request=False),
            count=True,
        )
        # The slot req_2 took is its own to renew (lua/renew.lua).
        lease = Grant(org.id, key.id, "req_2", 0)
        assert await SlotLeases(client, 10_000).renew([lease]) == [True]
        charge = RunCharge("run_1", "gpt-4o", 125, True, 40, 0, 10, key.id, total_tokens=50)
        step = StepCharge("step_1", "thread_1", 1, 2500, True, 30000, key.id)
        recorded = await charges.record(
            org.id,
            key.id,
            "req_2",
            0,
            [],
            ["asst_1"],
            [charge],
            [step],
            limiter.token_counters(key, org),
            limiter.slot_sets(org.id, key.id),
            finished=True,
        )
        owned = await decisions.filter_owned(org.id, ["asst_1"])
        await RunQueue(client).forget_pending(org.id, "run_1")
    # The stored charge keeps all but the run's total, which only the token limits use.
    assert recorded.charges == [dataclasses.replace(charge, total_tokens=0)]
    assert recorded.step_micros == [(2500, 30000)]
    return answer, owned


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def test_decide_and_record_run_on_a_cluster(cluster_url: str) -> None:
    answer, owned_after_delete = asyncio.run(_decide_and_record(cluster_url))

    assert answer.outcome is CheckOutcome.OK
    assert len(answer.counters) == 6
    assert owned_after_delete == []


async def _charge_storage(url: str) -> tuple[bool, str | None, str | None]:
    org_id, at = "cluster-storage-org", datetime.now(UTC)
    day = at.strftime("%Y-%m-%d")
    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    async with client:
        store = StorageFeeClaims(client)
        assert await store.claim_storage_fees([org_id], day, "token-1", 60_000) == [org_id]
        await store.release_storage_fee(org_id, day, "token-1")
        assert await store.claim_storage_fees([org_id], day, "token-2", 60_000) == [org_id]
        charged = await store.charge_storage_fee(org_id, at, "token-2", 150_000)
        mark = await client.get(redis_keys.storage_fee(org_id, day))
        spent = await client.get(redis_keys.spend(org_id, "org", "total"))
    return charged, mark, spent


def test_the_storage_fee_claim_and_charge_run_on_a_cluster(cluster_url: str) -> None:
    assert asyncio.run(_charge_storage(cluster_url)) == (True, "charged", "150000")


def test_the_cluster_refuses_a_script_whose_keys_span_slots(cluster_url: str) -> None:
    """The control for the test above: were any key untagged, the script would fail."""
    client = redis.Redis.from_url(cluster_url)
    with client, pytest.raises(redis.ResponseError, match="hash to the same slot"):
        client.eval("return 1", 2, redis_keys.org("a-org"), redis_keys.org("b-org"))
