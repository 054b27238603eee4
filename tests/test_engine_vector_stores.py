"""The engine's vector stores, their files and file batches, and search, through the official
OpenAI SDK pointed straight at the engine; responses checked against the shared spec."""

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from redis import Redis

from prism import redis_keys as keys
from tests.conftest import Engine
from tests.openapi_schemas import validate
from tests.test_engine_retrieval import make_pdf

WARRANTY = (
    "Warranty terms. The Acme kettle carries a warranty of two years from the date of "
    "purchase. Limescale damage is not covered by the warranty."
)
RECIPES = "# Pancakes\n\nWhisk flour, eggs and milk. Fry the batter in butter until golden.\n"
HTML = (
    "<html><head><title>Shipping</title><style>p{color:red}</style></head>"
    "<body><h1>Shipping</h1><p>Parcels to Norway travel by ferry and arrive in five days.</p>"
    "</body></html>"
)


@pytest.fixture
def client(engine: Engine) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=engine.url + "/v1", api_key=engine.api_key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http(engine: Engine) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {engine.api_key}"}
    with httpx.Client(base_url=engine.url + "/v1", headers=headers, timeout=30) as plain:
        yield plain


def upload(client: openai.OpenAI, name: str, content: bytes) -> str:
    return client.files.create(file=(name, content), purpose="assistants").id


def checked(schema: str, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    validate(schema, body)
    return body


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


def wait_completed(http: httpx.Client, vector_store_id: str) -> dict[str, Any]:
    """Polls the store as the SDK's *_and_poll helpers do, until nothing is in progress."""
    deadline = time.monotonic() + 30
    while True:
        body = checked("VectorStoreObject", http.get(f"/vector_stores/{vector_store_id}"))
        if body["status"] != "in_progress":
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_store_indexes_text_markdown_html_and_pdf_and_search_ranks_the_right_file(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    ids = {
        "warranty.txt": upload(client, "warranty.txt", WARRANTY.encode()),
        "recipes.md": upload(client, "recipes.md", RECIPES.encode()),
        "shipping.html": upload(client, "shipping.html", HTML.encode()),
        "manual.pdf": upload(
            client, "manual.pdf", make_pdf(["Descale the kettle monthly with citric acid."])
        ),
    }
    created = http.post(
        "/vector_stores",
        json={"name": "Support", "file_ids": list(ids.values()), "metadata": {"team": "care"}},
    )
    body = checked("VectorStoreObject", created)
    assert body["id"].startswith("vs_")
    assert body["name"] == "Support" and body["metadata"] == {"team": "care"}
    assert body["file_counts"]["total"] == 4

    store = wait_completed(http, body["id"])
    assert store["status"] == "completed"
    assert store["file_counts"] == {
        "in_progress": 0,
        "completed": 4,
        "failed": 0,
        "cancelled": 0,
        "total": 4,
    }
    assert store["usage_bytes"] > 0

    # The SDK reads the same object.
    assert client.vector_stores.retrieve(body["id"]).file_counts.completed == 4

    for query, expected in [
        ("How long is the kettle warranty?", "warranty.txt"),
        ("pancake batter recipe", "recipes.md"),
        ("ferry to Norway", "shipping.html"),
        ("descale with citric acid", "manual.pdf"),
    ]:
        page = checked(
            "VectorStoreSearchResultsPage",
            http.post(f"/vector_stores/{body['id']}/search", json={"query": query}),
        )
        assert page["search_query"] == [query]
        assert page["data"][0]["filename"] == expected, (query, page["data"])
        assert page["data"][0]["file_id"] == ids[expected]
        assert 0 < page["data"][0]["score"] <= 1

    # The HTML file's chunks hold its visible text only.
    content = checked(
        "VectorStoreFileContentResponse",
        http.get(f"/vector_stores/{body['id']}/files/{ids['shipping.html']}/content"),
    )
    text = " ".join(item["text"] for item in content["data"])
    assert "ferry" in text and "color:red" not in text

    # The SDK's search helper pages through the same results.
    results = list(client.vector_stores.search(body["id"], query="warranty", max_num_results=2))
    assert results[0].filename == "warranty.txt"


def test_sdk_create_and_poll_and_batches(client: openai.OpenAI, http: httpx.Client) -> None:
    store = client.vector_stores.create(name="Poll")
    first = upload(client, "one.txt", b"The lighthouse keeper feeds the gulls at dawn.")
    done = client.vector_stores.files.create_and_poll(
        file_id=first,
        vector_store_id=store.id,
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20},
        },
    )
    assert done.status == "completed" and done.last_error is None
    assert done.chunking_strategy.type == "static"
    assert done.chunking_strategy.static.max_chunk_size_tokens == 100
    validate("VectorStoreFileObject", http.get(f"/vector_stores/{store.id}/files/{first}").json())

    second = upload(client, "two.md", b"# Bees\nBees make honey from nectar.")
    third = upload(client, "three.txt", b"Otters hold hands while they sleep.")
    batch = client.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id, file_ids=[second, third]
    )
    assert batch.id.startswith("vsfb_")
    assert batch.status == "completed" and batch.file_counts.completed == 2
    raw = http.get(f"/vector_stores/{store.id}/file_batches/{batch.id}")
    validate("VectorStoreFileBatchObject", raw.json())
    listed = http.get(f"/vector_stores/{store.id}/file_batches/{batch.id}/files")
    body = checked("ListVectorStoreFilesResponse", listed)
    assert {f["id"] for f in body["data"]} == {second, third}

    uploaded = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("four.txt", b"Quokkas smile for photographs.")
    )
    assert uploaded.status == "completed"
    assert client.vector_stores.retrieve(store.id).file_counts.completed == 4

    # Cancelling a finished batch leaves its files done.
    cancelled = http.post(f"/vector_stores/{store.id}/file_batches/{batch.id}/cancel")
    body = checked("VectorStoreFileBatchObject", cancelled)
    assert body["file_counts"]["completed"] == 2


def test_unsupported_and_corrupt_files_fail_with_last_error(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    good = upload(client, "good.txt", b"Penguins huddle against the cold.")
    binary = upload(client, "tool.exe", b"MZ\x90\x00\x03")
    broken = upload(client, "broken.pdf", b"%PDF-1.4\n1 0 obj garbage")
    store = http.post("/vector_stores", json={"file_ids": [good, binary, broken]}).json()
    done = wait_completed(http, store["id"])
    assert done["file_counts"]["failed"] == 2 and done["file_counts"]["completed"] == 1

    failed = checked(
        "ListVectorStoreFilesResponse",
        http.get(f"/vector_stores/{store['id']}/files", params={"filter": "failed"}),
    )
    errors = {f["id"]: f["last_error"] for f in failed["data"]}
    assert set(errors) == {binary, broken}
    assert errors[binary]["code"] == "unsupported_file"
    assert "not supported" in errors[binary]["message"]
    assert errors[broken]["code"] == "invalid_file"
    completed = http.get(f"/vector_stores/{store['id']}/files", params={"filter": "completed"})
    assert [f["id"] for f in completed.json()["data"]] == [good]


def test_removing_a_file_removes_it_from_search(client: openai.OpenAI, http: httpx.Client) -> None:
    walrus = upload(client, "walrus.txt", b"Walruses use their tusks to climb onto ice.")
    owl = upload(client, "owl.txt", b"Owls turn their heads almost all the way round.")
    store = http.post("/vector_stores", json={"file_ids": [walrus, owl]}).json()
    wait_completed(http, store["id"])
    search = f"/vector_stores/{store['id']}/search"
    assert http.post(search, json={"query": "walrus tusks"}).json()["data"][0]["file_id"] == walrus

    deleted = http.delete(f"/vector_stores/{store['id']}/files/{walrus}")
    assert checked("DeleteVectorStoreFileResponse", deleted)["deleted"] is True
    hits = http.post(search, json={"query": "walrus tusks"}).json()["data"]
    assert walrus not in [hit["file_id"] for hit in hits]
    assert error_of(http.get(f"/vector_stores/{store['id']}/files/{walrus}"), 404)
    # The file itself is still there.
    assert client.files.retrieve(walrus).id == walrus
    assert wait_completed(http, store["id"])["file_counts"]["total"] == 1


def test_search_options_and_attribute_filters(client: openai.OpenAI, http: httpx.Client) -> None:
    store = client.vector_stores.create(name="Filters")
    red = upload(client, "red.txt", b"The red fox jumps over the fence.")
    blue = upload(client, "blue.txt", b"The blue fox sleeps under the fence.")
    for file_id, colour, year in [(red, "red", 2023), (blue, "blue", 2025)]:
        created = http.post(
            f"/vector_stores/{store.id}/files",
            json={"file_id": file_id, "attributes": {"colour": colour, "year": year}},
        )
        checked("VectorStoreFileObject", created)
    wait_completed(http, store.id)
    search = f"/vector_stores/{store.id}/search"

    both = http.post(search, json={"query": ["fox", "fence"]}).json()
    assert {hit["file_id"] for hit in both["data"]} == {red, blue}
    assert both["search_query"] == ["fox", "fence"]
    one = http.post(search, json={"query": "fox", "max_num_results": 1}).json()
    assert len(one["data"]) == 1
    only_blue = http.post(
        search, json={"query": "fox", "filters": {"type": "eq", "key": "colour", "value": "blue"}}
    ).json()
    assert [hit["file_id"] for hit in only_blue["data"]] == [blue]
    assert only_blue["data"][0]["attributes"] == {"colour": "blue", "year": 2025}
    compound = {
        "type": "and",
        "filters": [
            {"type": "gte", "key": "year", "value": 2020},
            {"type": "lt", "key": "year", "value": 2024},
        ],
    }
    older = http.post(search, json={"query": "fox", "filters": compound}).json()
    assert [hit["file_id"] for hit in older["data"]] == [red]
    strict = http.post(
        search, json={"query": "fox", "ranking_options": {"score_threshold": 1.0}}
    ).json()
    assert strict["data"] == []

    for body, param in [
        ({"query": "fox", "max_num_results": 51}, "max_num_results"),
        ({"query": "fox", "max_num_results": 0}, "max_num_results"),
        ({"query": ""}, "query"),
        ({}, "query"),
        ({"query": "fox", "ranking_options": {"ranker": "best"}}, "ranking_options.ranker"),
        ({"query": "fox", "filters": {"type": "like", "key": "a", "value": 1}}, "filters.type"),
        ({"query": "fox", "unknown": 1}, "unknown"),
    ]:
        assert error_of(http.post(search, json=body), 400)["param"] == param, body


def test_listing_pages_and_modify_and_delete(client: openai.OpenAI, http: httpx.Client) -> None:
    made = [client.vector_stores.create(name=f"page-{n}").id for n in range(3)]
    first = checked("ListVectorStoresResponse", http.get("/vector_stores", params={"limit": 2}))
    assert [s["id"] for s in first["data"]] == made[::-1][:2]
    assert first["has_more"] is True
    after = http.get("/vector_stores", params={"limit": 2, "after": first["last_id"]}).json()
    assert after["data"][0]["id"] == made[0]
    ascending = http.get(
        "/vector_stores", params={"limit": 1, "order": "asc", "after": made[0]}
    ).json()
    assert ascending["data"][0]["id"] == made[1]

    modified = http.post(
        f"/vector_stores/{made[0]}",
        json={
            "name": "renamed",
            "metadata": {"k": "v"},
            "expires_after": {"anchor": "last_active_at", "days": 7},
        },
    )
    body = checked("VectorStoreObject", modified)
    assert body["name"] == "renamed" and body["metadata"] == {"k": "v"}
    assert body["expires_after"] == {"anchor": "last_active_at", "days": 7}
    assert body["expires_at"] == body["last_active_at"] + 7 * 86400

    deleted = client.vector_stores.delete(made[0])
    assert deleted.deleted is True
    assert error_of(http.get(f"/vector_stores/{made[0]}"), 404)["message"] == (
        f"No vector store found with id '{made[0]}'."
    )
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(made[0])


def test_validation_errors_and_missing_objects(client: openai.OpenAI, http: httpx.Client) -> None:
    store = client.vector_stores.create(name="Errors").id
    text = upload(client, "a.txt", b"alpha")
    static = {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0}
    bad_strategy = {"file_ids": [text], "chunking_strategy": {"type": "static", "static": static}}
    stores, files, batches = (
        "/vector_stores",
        f"/vector_stores/{store}/files",
        (f"/vector_stores/{store}/file_batches"),
    )
    for path, body, param in [
        (stores, {"file_ids": ["file-nope"]}, "file_ids"),
        (stores, {"expires_after": {"anchor": "created_at", "days": 1}}, "expires_after.anchor"),
        (stores, {"expires_after": {"anchor": "last_active_at", "days": 0}}, "expires_after.days"),
        (stores, bad_strategy, "chunking_strategy.static.max_chunk_size_tokens"),
        (stores, {"chunking_strategy": {"type": "dynamic"}}, "chunking_strategy.type"),
        (stores, {"name": 5}, "name"),
        (files, {}, "file_id"),
        (files, {"file_id": text, "attributes": {"a": [1]}}, "attributes.a"),
        (batches, {}, "file_ids"),
        (batches, {"file_ids": []}, "file_ids"),
    ]:
        response = http.post(path, json=body)
        assert response.status_code in (400, 404), (body, response.text)
        assert response.json()["error"]["param"] == param, (body, response.text)

    listed = http.get(f"/vector_stores/{store}/files", params={"filter": "done"})
    assert error_of(listed, 400)["param"] == "filter"
    assert error_of(http.get("/vector_stores", params={"after": "vs_nope"}), 400)["param"] == (
        "after"
    )
    assert error_of(http.get("/vector_stores/vs_nope"), 404)
    assert error_of(http.post("/vector_stores/vs_nope/search", json={"query": "x"}), 404)
    assert error_of(http.get(f"/vector_stores/{store}/files/file-nope"), 404)
    assert error_of(http.get(f"/vector_stores/{store}/file_batches/vsfb_nope"), 404)
    assert error_of(http.post(f"/vector_stores/{store}/file_batches/vsfb_nope/cancel"), 404)
    assert error_of(http.delete(f"/vector_stores/{store}/files/file-nope"), 404)
    # An assistant's id is not a vector store's.
    assistant = client.beta.assistants.create(model="gpt-4o").id
    assert error_of(http.get(f"/vector_stores/{assistant}"), 404)


def test_a_file_left_in_progress_by_a_dead_process_is_indexed_again(
    client: openai.OpenAI, http: httpx.Client, redis_url: str
) -> None:
    file_id = upload(client, "crane.txt", b"Cranes dance in the marshes every spring.")
    store = client.vector_stores.create(name="Revive", file_ids=[file_id]).id
    wait_completed(http, store)
    # What a process that died mid-indexing leaves: the file in progress, no chunks, no lease.
    redis = Redis.from_url(redis_url, decode_responses=True)
    key = keys.engine_vector_store_file(store, file_id)
    record = json.loads(redis.get(key))
    redis.set(key, json.dumps({**record, "status": "in_progress", "usage_bytes": 0}))
    redis.delete(keys.engine_vector_store_chunks(store, file_id))
    redis.close()

    revived = wait_completed(http, store)
    assert revived["file_counts"]["completed"] == 1
    hits = http.post(f"/vector_stores/{store}/search", json={"query": "cranes dance"}).json()
    assert hits["data"][0]["file_id"] == file_id
