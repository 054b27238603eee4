"""Vector-store storage, charged by the control plane's sweeper once per org and UTC day:
the GB (10^9 bytes) past the first of the org's stores' usage_bytes, at the per-GB-day tool
fee, to the org's spend (its budgets), GetUsage (model `vector_store_storage`, no key) and
/metrics, however many control planes sweep and however often. A store holds one small
file, whose size in the engine's record is then set to what the test needs, so no gigabytes
are uploaded."""

import time
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

import httpx
import openai
import pytest
from openai.types import VectorStore
from prometheus_client.parser import text_string_to_metric_families

from prism.v1 import admin_pb2
from tests.conftest import AdminClient, ControlPlane, IssueKey, Resize, Sdk, Upstream, wait_for

STORAGE = "vector_store_storage"


def storage_micros(usage_bytes: int, usd_per_gb_day: str) -> int:
    """The issue's fee computed independently: decimal GB past the first, whole micro-USD."""
    billed = Decimal(max(usage_bytes - 10**9, 0)) / 10**9
    exact = billed * Decimal(usd_per_gb_day) * 1_000_000
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def storage_rows(admin: AdminClient, org_id: str) -> list[admin_pb2.UsageRow]:
    return list(
        admin.GetUsage(
            admin_pb2.GetUsageRequest(
                org_id=org_id,
                model=STORAGE,
                group_by=[
                    admin_pb2.USAGE_GROUPING_DAY,
                    admin_pb2.USAGE_GROUPING_KEY,
                    admin_pb2.USAGE_GROUPING_MODEL,
                ],
            )
        ).rows
    )


def small_file(client: openai.OpenAI) -> str:
    content = b"Storage past the first GB is charged by the GB-day."
    return client.files.create(file=("notes.txt", content), purpose="assistants").id


def sized_store(client: openai.OpenAI, resize: Resize, name: str, usage_bytes: int) -> VectorStore:
    file_id = small_file(client)
    store = client.vector_stores.create(name=name, file_ids=[file_id])
    resize(store.id, file_id, usage_bytes)
    return store


def fetches(upstream: Upstream, store_id: str) -> list[dict[str, object]]:
    return [
        request
        for request in upstream.requests()
        if request["method"] == "GET" and request["path"] == f"/v1/vector_stores/{store_id}"
    ]


def storage_cost_metric(controlplane: ControlPlane) -> float:
    text = httpx.get(controlplane.metrics_url).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "prism_cost_usd_total" and sample.labels.get("model") == STORAGE
    )


def test_storage_past_the_first_gb_is_charged_to_the_org_once_a_day_by_any_control_plane(
    issue_key: IssueKey,
    sdk: Sdk,
    admin: AdminClient,
    upstream: Upstream,
    resize: Resize,
    start_sweeping: Callable[[], ControlPlane],
    spend: Callable[[str, str], int],
) -> None:
    fee = admin.ListModelPrices(admin_pb2.ListModelPricesRequest()).tool_fees
    assert fee.vector_store_usd_per_gb_day == 0.1
    # The org's budget is below one day of its storage.
    big_org, big_key = issue_key(admin_pb2.Policy(budgets=admin_pb2.Budgets(total_usd=0.1)))
    big = sdk(big_key.secret)
    kept = [sized_store(big, resize, f"kept {size}", size) for size in (1_700_000_000, 800_000_000)]
    deleted = sized_store(big, resize, "deleted", 9_000_000_000)
    big.vector_stores.delete(deleted.id)
    # Gone upstream without the gateway seeing it: the sweeper's fetch gets a 404.
    vanished = sized_store(big, resize, "vanished", 5_000_000_000)
    httpx.delete(
        f"{upstream.url}/vector_stores/{vanished.id}",
        headers={"Authorization": f"Bearer {upstream.api_key}", "OpenAI-Beta": "assistants=v2"},
    ).raise_for_status()
    small_org, small_key = issue_key()
    small = sized_store(sdk(small_key.secret), resize, "small", 900_000_000)

    sweepers = [start_sweeping(), start_sweeping()]
    wait_for(lambda: storage_rows(admin, big_org.id), "the big org's storage was never charged")
    wait_for(lambda: fetches(upstream, small.id), "the small org's store was never fetched")
    # Many more sweeps on both control planes, which must charge nothing more today.
    time.sleep(1.5)

    cost = storage_micros(1_700_000_000 + 800_000_000, "0.10")
    assert cost == 150_000
    (row,) = storage_rows(admin, big_org.id)
    assert row.day == time.strftime("%Y-%m-%d", time.gmtime())
    assert (row.key_id, row.model, row.runs, row.requests) == ("", STORAGE, 0, 0)
    assert (row.input_tokens, row.cached_tokens, row.output_tokens) == (0, 0, 0)
    assert round(row.cost_usd * 1_000_000) == cost
    assert spend(big_org.id, "org") == cost
    assert spend(big_org.id, f"key:{big_key.key.id}") == 0
    assert sum(storage_cost_metric(cp) for cp in sweepers) == pytest.approx(cost / 1_000_000)
    # Under the free GB: looked at, charged nothing, no row.
    assert storage_rows(admin, small_org.id) == []
    assert spend(small_org.id, "org") == 0
    # Each store fetched once for the day, with the gateway's credential; the deleted one
    # never, as the gateway saw it go.
    for store in (*kept, vanished):
        (fetch,) = fetches(upstream, store.id)
        assert fetch["headers"]["openai-beta"] == "assistants=v2"  # type: ignore[index]
        assert fetch["headers"]["authorization"] == f"Bearer {upstream.api_key}"  # type: ignore[index]
    assert fetches(upstream, deleted.id) == []
    # The spend feeds the org's budget: the next request that can add cost is refused;
    # reading still works.
    assert {store.id for store in big.vector_stores.list()} == {store.id for store in kept}
    with pytest.raises(openai.RateLimitError) as refused:
        big.vector_stores.create(name="one more")
    assert refused.value.code == "insufficient_quota"
    assert "this org's total budget of $0.10 is spent ($0.15 used)" in refused.value.message


def test_a_failed_fetch_leaves_the_day_to_a_later_sweep(
    issue_key: IssueKey,
    sdk: Sdk,
    admin: AdminClient,
    upstream: Upstream,
    resize: Resize,
    start_sweeping: Callable[[], ControlPlane],
    spend: Callable[[str, str], int],
) -> None:
    org, issued = issue_key()
    client = sdk(issued.secret)
    stores = [
        sized_store(client, resize, "a", 1_250_000_000),
        sized_store(client, resize, "b", 250_000_001),
    ]
    upstream.add_fault(method="GET", path=f"/v1/vector_stores/{stores[0].id}", status=500, times=2)

    start_sweeping()
    wait_for(lambda: storage_rows(admin, org.id), "the storage was never charged")
    time.sleep(1)

    # 0.500000001 GB past the first at 0.10 USD: 0.0500000001 USD, 50000 micro-USD.
    cost = storage_micros(1_250_000_000 + 250_000_001, "0.10")
    (row,) = storage_rows(admin, org.id)
    assert round(row.cost_usd * 1_000_000) == cost == 50_000
    assert spend(org.id, "org") == cost
    # Two sweeps failed on the first store, the third charged the day.
    assert len(fetches(upstream, stores[0].id)) == 3
