"""The engine's vector stores, their files and file batches, and search, through the official
OpenAI SDK pointed straight at the engine; responses checked against the spec (spec/)."""

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from prism import redis_client
from prism import redis_keys as keys
from tests.conftest import Engine, assert_one_clear_line, start_and_fail
from tests.fake_embeddings import FakeEmbeddings
from tests.openapi_schemas import validate
from tests.test_engine_retrieval import make_pdf
from tools import stack

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
def http(engine: Engine) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {engine.api_key}"}
    with httpx.Client(base_url=engine.url + "/v1", headers=headers, timeout=30) as plain:
        yield plain


def upload(engine_client: openai.OpenAI, name: str, content: bytes) -> str:
    return engine_client.files.create(file=(name, content), purpose="assistants").id


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
    engine_client: openai.OpenAI, http: httpx.Client
) -> None:
    ids = {
        "warranty.txt": upload(engine_client, "warranty.txt", WARRANTY.encode()),
        "recipes.md": upload(engine_client, "recipes.md", RECIPES.encode()),
        "shipping.html": upload(engine_client, "shipping.html", HTML.encode()),
        "manual.pdf": upload(
            engine_client, "manual.pdf", make_pdf(["Descale the kettle monthly with citric acid."])
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
    assert engine_client.vector_stores.retrieve(body["id"]).file_counts.completed == 4

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
    results = list(
        engine_client.vector_stores.search(body["id"], query="warranty", max_num_results=2)
    )
    assert results[0].filename == "warranty.txt"


def test_sdk_create_and_poll_and_batches(engine_client: openai.OpenAI, http: httpx.Client) -> None:
    store = engine_client.vector_stores.create(name="Poll")
    first = upload(engine_client, "one.txt", b"The lighthouse keeper feeds the gulls at dawn.")
    done = engine_client.vector_stores.files.create_and_poll(
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

    second = upload(engine_client, "two.md", b"# Bees\nBees make honey from nectar.")
    third = upload(engine_client, "three.txt", b"Otters hold hands while they sleep.")
    batch = engine_client.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id, file_ids=[second, third]
    )
    assert batch.id.startswith("vsfb_")
    assert batch.status == "completed" and batch.file_counts.completed == 2
    raw = http.get(f"/vector_stores/{store.id}/file_batches/{batch.id}")
    validate("VectorStoreFileBatchObject", raw.json())
    listed = http.get(f"/vector_stores/{store.id}/file_batches/{batch.id}/files")
    body = checked("ListVectorStoreFilesResponse", listed)
    assert {f["id"] for f in body["data"]} == {second, third}

    uploaded = engine_client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("four.txt", b"Quokkas smile for photographs.")
    )
    assert uploaded.status == "completed"
    assert engine_client.vector_stores.retrieve(store.id).file_counts.completed == 4

    # Cancelling a finished batch leaves its files done.
    cancelled = http.post(f"/vector_stores/{store.id}/file_batches/{batch.id}/cancel")
    body = checked("VectorStoreFileBatchObject", cancelled)
    assert body["file_counts"]["completed"] == 2


def test_unsupported_and_corrupt_files_fail_with_last_error(
    engine_client: openai.OpenAI, http: httpx.Client
) -> None:
    good = upload(engine_client, "good.txt", b"Penguins huddle against the cold.")
    binary = upload(engine_client, "tool.exe", b"MZ\x90\x00\x03")
    broken = upload(engine_client, "broken.pdf", b"%PDF-1.4\n1 0 obj garbage")
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


def test_removing_a_file_removes_it_from_search(
    engine_client: openai.OpenAI, http: httpx.Client
) -> None:
    walrus = upload(engine_client, "walrus.txt", b"Walruses use their tusks to climb onto ice.")
    owl = upload(engine_client, "owl.txt", b"Owls turn their heads almost all the way round.")
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
    assert engine_client.files.retrieve(walrus).id == walrus
    assert wait_completed(http, store["id"])["file_counts"]["total"] == 1


def test_search_options_and_attribute_filters(
    engine_client: openai.OpenAI, http: httpx.Client
) -> None:
    store = engine_client.vector_stores.create(name="Filters")
    red = upload(engine_client, "red.txt", b"The red fox jumps over the fence.")
    blue = upload(engine_client, "blue.txt", b"The blue fox sleeps under the fence.")
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


def test_listing_pages_and_modify_and_delete(
    engine_client: openai.OpenAI, http: httpx.Client
) -> None:
    made = [engine_client.vector_stores.create(name=f"page-{n}").id for n in range(3)]
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

    deleted = engine_client.vector_stores.delete(made[0])
    assert deleted.deleted is True
    assert error_of(http.get(f"/vector_stores/{made[0]}"), 404)["message"] == (
        f"No vector store found with id '{made[0]}'."
    )
    with pytest.raises(openai.NotFoundError):
        engine_client.vector_stores.retrieve(made[0])


def test_validation_errors_and_missing_objects(
    engine_client: openai.OpenAI, http: httpx.Client
) -> None:
    store = engine_client.vector_stores.create(name="Errors").id
    text = upload(engine_client, "a.txt", b"alpha")
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
    assistant = engine_client.beta.assistants.create(model="gpt-4o").id
    assert error_of(http.get(f"/vector_stores/{assistant}"), 404)


def test_a_file_left_in_progress_by_a_dead_process_is_indexed_again(
    engine_client: openai.OpenAI, http: httpx.Client, redis_url: str
) -> None:
    file_id = upload(engine_client, "crane.txt", b"Cranes dance in the marshes every spring.")
    store = engine_client.vector_stores.create(name="Revive", file_ids=[file_id]).id
    wait_completed(http, store)
    # What a process that died mid-indexing leaves: the file in progress, no chunks, no lease.
    redis = redis_client.sync_client(redis_url, decode_responses=True)
    key = keys.engine_vector_store_file(store, file_id)
    record = json.loads(redis.get(key))
    redis.set(key, json.dumps({**record, "status": "in_progress", "usage_bytes": 0}))
    redis.delete(keys.engine_vector_store_chunks(store, file_id))
    redis.close()

    revived = wait_completed(http, store)
    assert revived["file_counts"]["completed"] == 1
    hits = http.post(f"/vector_stores/{store}/search", json={"query": "cranes dance"}).json()
    assert hits["data"][0]["file_id"] == file_id


# Embeddings: a private engine on its own Redis database (11), with a fake embeddings
# endpoint.

GARAGE = "Bring the sedan in for new tyres every autumn."
PETS = "A puppy needs walks twice a day."
SYNONYM_QUESTION = "How do I maintain my automobile?"


def _embeddings_settings(
    redis_url: str, tmp_path: Path, embeddings: FakeEmbeddings
) -> dict[str, str]:
    return {
        "PRISM_ENGINE_LISTEN": f"127.0.0.1:{stack.free_port()}",
        "PRISM_ENGINE_API_KEY": "sk-engine-" + secrets.token_urlsafe(16),
        "PRISM_ENGINE_REDIS_URL": redis_url.rpartition("/")[0] + "/11",
        "PRISM_ENGINE_DATA_DIR": str(tmp_path / "engine-data"),
        "PRISM_ENGINE_EMBEDDINGS_URL": embeddings.url,
        "PRISM_ENGINE_EMBEDDINGS_MODEL": "fake-embed-1",
        "PRISM_ENGINE_EMBEDDINGS_API_KEY_ENV": "TEST_EMBEDDINGS_KEY",
        "TEST_EMBEDDINGS_KEY": embeddings.api_key,
    }


def test_with_embeddings_search_finds_what_bm25_alone_misses(
    engine_client: openai.OpenAI, http: httpx.Client, redis_url: str, tmp_path: Path, logs: Path
) -> None:
    # The shared engine has no embeddings: BM25 finds nothing for other words.
    plain_store = engine_client.vector_stores.create(
        name="Plain", file_ids=[upload(engine_client, "garage.txt", GARAGE.encode())]
    )
    wait_completed(http, plain_store.id)
    assert list(engine_client.vector_stores.search(plain_store.id, query=SYNONYM_QUESTION)) == []

    with FakeEmbeddings() as embeddings:
        settings = _embeddings_settings(redis_url, tmp_path, embeddings)
        process = stack.start_engine(settings, logs, name="engine-embeddings")
        try:
            url = "http://" + settings["PRISM_ENGINE_LISTEN"] + "/v1"
            key = settings["PRISM_ENGINE_API_KEY"]
            with (
                openai.OpenAI(base_url=url, api_key=key, max_retries=0) as sdk,
                httpx.Client(
                    base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
                ) as private_http,
            ):
                garage = upload(sdk, "garage.txt", GARAGE.encode())
                pets = upload(sdk, "pets.txt", PETS.encode())
                store = sdk.vector_stores.create(name="Hybrid", file_ids=[garage, pets]).id
                assert wait_completed(private_http, store)["file_counts"]["completed"] == 2
                assert {r["body"]["model"] for r in embeddings.requests} == {"fake-embed-1"}

                hits = list(sdk.vector_stores.search(store, query=SYNONYM_QUESTION))
                assert hits[0].file_id == garage
                assert 0 < hits[0].score <= 1

                # The file_search tool of a run ranks the same way, and cites the file.
                assistant = sdk.beta.assistants.create(
                    model="gpt-4o",
                    tools=[{"type": "file_search"}],
                    tool_resources={"file_search": {"vector_store_ids": [store]}},
                )
                run = sdk.beta.threads.create_and_run_poll(
                    assistant_id=assistant.id,
                    thread={"messages": [{"role": "user", "content": SYNONYM_QUESTION}]},
                    poll_interval_ms=50,
                )
                assert run.status == "completed", run.last_error
                [reply] = sdk.beta.threads.messages.list(run.thread_id, run_id=run.id).data
                text = reply.content[0].text  # type: ignore[union-attr]
                assert "sedan" in text.value
                assert garage in [a.file_citation.file_id for a in text.annotations]  # type: ignore[union-attr]

                # The endpoint failing: search falls back to BM25 (still answering), and a
                # file added now fails with server_error.
                embeddings.fail_status = 503
                assert list(sdk.vector_stores.search(store, query=SYNONYM_QUESTION)) == []
                [by_words] = list(sdk.vector_stores.search(store, query="sedan tyres"))
                assert by_words.file_id == garage
                late = upload(sdk, "late.txt", b"Umbrellas for the storm season.")
                sdk.vector_stores.files.create(store, file_id=late)
                wait_completed(private_http, store)
                failed = sdk.vector_stores.files.retrieve(late, vector_store_id=store)
                assert failed.status == "failed"
                assert failed.last_error is not None
                assert failed.last_error.code == "server_error"
                assert embeddings.url not in failed.last_error.message
        finally:
            process.stop()
    log = process.log_path.read_text()
    assert "BM25 alone" in log
    assert embeddings.api_key not in log


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("PRISM_ENGINE_EMBEDDINGS_URL", "localhost:11434"),
        ("PRISM_ENGINE_EMBEDDINGS_API_KEY_ENV", "sk-pasted-secret-key"),
        ("PRISM_ENGINE_EMBEDDINGS_API_KEY_ENV", "UNSET_EMBEDDINGS_KEY"),
    ],
)
def test_a_bad_embeddings_setting_stops_the_start_with_one_line(setting: str, value: str) -> None:
    settings = {
        "PRISM_ENGINE_API_KEY": "k",
        "PRISM_ENGINE_EMBEDDINGS_URL": "http://127.0.0.1:9/v1",
        setting: value,
    }
    result = start_and_fail("engine", settings)
    assert_one_clear_line(result, "engine", 2, setting)
    assert "sk-pasted-secret-key" not in result.stderr
