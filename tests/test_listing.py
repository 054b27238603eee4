"""Listings show each org its own objects only: `GET /v1/assistants`, `/v1/files` and
`/v1/vector_stores`, through the gateway with the OpenAI SDK, while two orgs create objects
interleaved and other objects of the shared upstream account (created on the upstream
directly, owned by no org) lie between them. Pages, cursors in both directions, `has_more`,
`first_id` and `last_id` are those of a listing holding the org's objects alone."""

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import openai
import pytest

from tests.conftest import DataPlane, IssueKey, Upstream

KINDS = ("assistants", "files", "vector_stores")
# The order the objects are created in: A and B through the gateway as their orgs, F on
# the upstream directly. The first burst of F holds more than one upstream page (100).
PATTERN = ["A", "F" * 120, "A", "B", "A", "B", "B", "A", "F" * 3, "A", "B", "A", "A", "B"]
# OpenAI's largest `limit` per listing (files take far more than the others).
MAX_LIMIT = {"assistants": 100, "files": 10_000, "vector_stores": 100}


@dataclass
class Tenant:
    client: openai.OpenAI
    # Per kind, the ids this org created, oldest first.
    ids: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in KINDS})

    def ordered(self, kind: str, order: str) -> list[str]:
        return self.ids[kind] if order == "asc" else self.ids[kind][::-1]


@dataclass
class World:
    a: Tenant
    b: Tenant
    # Per kind, the objects created on the upstream directly, oldest first.
    foreign: dict[str, list[str]]
    # A's files by purpose: two purposes alternate.
    a_files_by_purpose: dict[str, list[str]]


def _resource(client: openai.OpenAI, kind: str) -> Any:
    return {
        "assistants": client.beta.assistants,
        "files": client.files,
        "vector_stores": client.vector_stores,
    }[kind]


def _purpose(index: int) -> str:
    return ("assistants", "vision")[index % 2]


def _create(client: openai.OpenAI, kind: str, index: int) -> str:
    if kind == "assistants":
        return client.beta.assistants.create(model="gpt-4o", name=f"listed {index}").id
    if kind == "files":
        upload = (f"listed-{index}.txt", b"listed %d" % index)
        return client.files.create(file=upload, purpose=_purpose(index)).id  # type: ignore[arg-type]
    return client.vector_stores.create(name=f"listed {index}").id


def _create_upstream(upstream: httpx.Client, kind: str, index: int) -> str:
    if kind == "files":
        response = upstream.post(
            "/files",
            files={"file": (f"other-{index}.txt", b"other")},
            data={"purpose": _purpose(index)},
        )
    else:
        body = {"model": "gpt-4o"} if kind == "assistants" else {"name": f"other {index}"}
        response = upstream.post(f"/{kind}", json=body)
    response.raise_for_status()
    return str(response.json()["id"])


def _client(dataplane: DataPlane, issue_key: IssueKey) -> openai.OpenAI:
    _, issued = issue_key()
    return openai.OpenAI(base_url=dataplane.url, api_key=issued.secret, max_retries=0)


@pytest.fixture(scope="module")
def upstream(shared_upstream: Upstream) -> Iterator[httpx.Client]:
    """The shared upstream account itself, as any other tenant's traffic reaches it."""
    headers = {"authorization": f"Bearer {shared_upstream.api_key}", "openai-beta": "assistants=v2"}
    with httpx.Client(base_url=shared_upstream.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def world(dataplane: DataPlane, issue_key: IssueKey, upstream: httpx.Client) -> Iterator[World]:
    with _client(dataplane, issue_key) as a_client, _client(dataplane, issue_key) as b_client:
        world = World(Tenant(a_client), Tenant(b_client), {kind: [] for kind in KINDS}, {})
        tenants = {"A": world.a, "B": world.b}
        index = 0
        for kind in KINDS:
            for step in PATTERN:
                # Bursts of other tenants' objects are shorter where a page is not at stake.
                for _ in range(len(step) if kind == "assistants" else min(len(step), 3)):
                    index += 1
                    if step[0] == "F":
                        world.foreign[kind].append(_create_upstream(upstream, kind, index))
                        continue
                    tenant = tenants[step]
                    tenant.ids[kind].append(_create(tenant.client, kind, index))
                    if tenant is world.a and kind == "files":
                        world.a_files_by_purpose.setdefault(_purpose(index), []).append(
                            tenant.ids[kind][-1]
                        )
        yield world


def _listing(client: openai.OpenAI, kind: str, **params: Any) -> dict[str, Any]:
    """One page as the client receives it, with the fields the SDK's page type leaves out."""
    extra_query = params.pop("extra_query", {})
    if kind == "files" and "before" in params:
        # The SDK's files.list has no `before` (OpenAI does not document it there).
        extra_query["before"] = params.pop("before")
    raw = _resource(client, kind).with_raw_response.list(**params, extra_query=extra_query)
    body: dict[str, Any] = raw.http_response.json()
    return body


def _assert_page(body: dict[str, Any], ids: list[str], has_more: bool) -> None:
    assert body["object"] == "list"
    assert [obj["id"] for obj in body["data"]] == ids
    assert body["first_id"] == (ids[0] if ids else None)
    assert body["last_id"] == (ids[-1] if ids else None)
    assert body["has_more"] is has_more


@pytest.mark.parametrize("kind", KINDS)
def test_each_org_lists_only_its_own_objects(world: World, kind: str) -> None:
    for tenant in (world.a, world.b):
        _assert_page(_listing(tenant.client, kind), tenant.ordered(kind, "desc"), False)
        _assert_page(_listing(tenant.client, kind, order="asc"), tenant.ordered(kind, "asc"), False)


def test_an_org_without_objects_lists_none(client: openai.OpenAI, world: World) -> None:
    """A fresh org sees none of the objects `world` created."""
    for kind in KINDS:
        _assert_page(_listing(client, kind), [], False)


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("kind", KINDS)
def test_pages_forward_with_after(world: World, kind: str, order: str) -> None:
    for tenant in (world.a, world.b):
        expected = tenant.ordered(kind, order)
        after: dict[str, str] = {}
        for start in range(0, len(expected), 2):
            body = _listing(tenant.client, kind, limit=2, order=order, **after)
            _assert_page(body, expected[start : start + 2], start + 2 < len(expected))
            after = {"after": body["last_id"]}


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("kind", KINDS)
def test_pages_back_with_before(world: World, kind: str, order: str) -> None:
    expected = world.a.ordered(kind, order)
    # Each page holds the objects just before the cursor; `has_more` looks further back.
    for end in range(len(expected)):
        body = _listing(world.a.client, kind, limit=2, order=order, before=expected[end])
        _assert_page(body, expected[max(0, end - 2) : end], end > 2)


@pytest.mark.parametrize("kind", KINDS)
def test_after_and_before_bound_a_page_together(world: World, kind: str) -> None:
    expected = world.a.ordered(kind, "asc")
    between = {"after": expected[0], "before": expected[5]}
    _assert_page(
        _listing(world.a.client, kind, limit=2, order="asc", **between), expected[1:3], True
    )
    _assert_page(
        _listing(world.a.client, kind, limit=10, order="asc", **between), expected[1:5], False
    )


@pytest.mark.parametrize("kind", KINDS)
def test_sdk_auto_pagination_yields_exactly_the_orgs_objects(world: World, kind: str) -> None:
    for tenant in (world.a, world.b):
        resource = _resource(tenant.client, kind)
        assert [obj.id for obj in resource.list(limit=2)] == tenant.ordered(kind, "desc")
        assert [obj.id for obj in resource.list(limit=3, order="asc")] == tenant.ordered(
            kind, "asc"
        )


def test_files_listing_keeps_the_purpose_filter(world: World) -> None:
    for purpose, ids in world.a_files_by_purpose.items():
        _assert_page(_listing(world.a.client, "files", purpose=purpose, order="asc"), ids, False)
        assert [
            obj.id for obj in world.a.client.files.list(purpose=purpose, limit=1, order="asc")
        ] == ids


def test_a_walk_crosses_upstream_pages_of_other_tenants_objects(
    world: World, shared_upstream: Upstream
) -> None:
    """A's second and third assistants lie past more than a whole upstream page of other
    objects: the gateway asks for the next page from where the last one ended."""
    first, second, third = world.a.ids["assistants"][:3]
    burst = world.foreign["assistants"]
    shared_upstream.clear_requests()
    body = _listing(world.a.client, "assistants", limit=1, order="asc", after=first)
    _assert_page(body, [second], True)

    pages = [
        parse_qs(request["query"])
        for request in shared_upstream.requests()
        if request["method"] == "GET" and request["path"] == "/v1/assistants"
    ]
    assert pages == [
        {"limit": ["100"], "order": ["asc"], "after": [first]},
        {"limit": ["100"], "order": ["asc"], "after": [burst[99]]},
    ]
    # The third was needed to know there is more; it is not shown.
    assert third not in str(body)


@pytest.mark.parametrize("param", ["after", "before"])
@pytest.mark.parametrize("kind", KINDS)
def test_another_orgs_object_as_cursor_is_an_unknown_cursor(
    world: World, upstream: httpx.Client, kind: str, param: str
) -> None:
    """Whether the cursor is B's, nobody's or no object at all, A gets the answer the
    upstream gives for an unknown cursor, so a listing reveals nothing of other objects."""
    missing = world.b.ids[kind][0][:-6] + secrets.token_hex(3)
    unknown = upstream.get(f"/{kind}", params={param: missing})
    assert unknown.status_code == 400

    for cursor in (world.b.ids[kind][0], world.foreign[kind][0], missing):
        with pytest.raises(openai.BadRequestError) as raised:
            _listing(world.a.client, kind, **{param: cursor})
        assert raised.value.status_code == 400
        assert raised.value.body == {
            key: value.replace(missing, cursor) if isinstance(value, str) else value
            for key, value in unknown.json()["error"].items()
        }


@pytest.mark.parametrize("kind", KINDS)
def test_limit_is_validated_as_openai_does(world: World, kind: str) -> None:
    maximum = MAX_LIMIT[kind]
    for limit in ("0", str(maximum + 1), "-1", "two", ""):
        with pytest.raises(openai.BadRequestError) as raised:
            _listing(world.a.client, kind, extra_query={"limit": limit})
        error = raised.value
        assert (error.type, error.param) == ("invalid_request_error", "limit")
        assert f"between 1 and {maximum}" in error.message
    _assert_page(
        _listing(world.a.client, kind, limit=maximum), world.a.ordered(kind, "desc"), False
    )


@pytest.mark.parametrize("kind", KINDS)
def test_upstream_errors_pass_through_unchanged(
    world: World, upstream: httpx.Client, kind: str
) -> None:
    direct = upstream.get(f"/{kind}", params={"order": "sideways"})
    assert direct.status_code == 400
    with pytest.raises(openai.BadRequestError) as raised:
        _listing(world.a.client, kind, extra_query={"order": "sideways"})
    assert raised.value.response.json() == direct.json()


@pytest.fixture
def faults(shared_upstream: Upstream) -> Iterator[Callable[..., None]]:
    yield shared_upstream.add_fault
    shared_upstream.clear_faults()


def test_an_upstream_failure_on_the_first_page_passes_through(
    world: World, faults: Callable[..., None]
) -> None:
    faults(path="/v1/assistants", method="GET", status=503)
    with pytest.raises(openai.InternalServerError) as raised:
        _listing(world.a.client, "assistants")
    assert raised.value.status_code == 503
    assert raised.value.response.json()["error"]["message"] == "injected fault"


def test_an_upstream_failure_further_on_is_a_gateway_502(
    world: World, faults: Callable[..., None]
) -> None:
    """A later page's error is not relayed: it could name another org's object (the cursor
    the walk took from the page before). The SDK retries a 502."""
    faults(path="/v1/assistants", method="GET")  # the first page passes
    faults(path="/v1/assistants", method="GET", status=400)
    with pytest.raises(openai.InternalServerError) as raised:
        _listing(
            world.a.client, "assistants", limit=1, order="asc", after=world.a.ids["assistants"][0]
        )
    assert raised.value.status_code == 502
    assert raised.value.code == "upstream_bad_listing"
