"""A bounded, seeded property-based fuzz of the data plane in front of the engine, with
schemathesis and the vendored spec (spec/): for the requests generated for each of its 44
operations, valid and invalid alike (wrong types, missing and unknown fields, malformed or
non-JSON bodies, unexpected methods), neither the gateway nor the engine behind it answers
5xx, and every 4xx has OpenAI's error body: `{"error": {...}}` with exactly `message` (a
non-empty string), `type` (a string), `param` and `code` (strings or null).

Only those two properties: success bodies and whether a status is one the spec lists are
not checked (an id that names nothing is a 404, as it should be). The seed is fixed, so
every run generates the same requests.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import openai
import pytest
import schemathesis
from hypothesis.configuration import set_hypothesis_home_dir

from tests.conftest import DataPlane, IssueKey
from tests.openapi_schemas import SPEC

SEED = 20240617
# Fuzzing-phase examples per operation, on top of the coverage phase's deterministic cases
# (each field missing, of the wrong type or at its bounds; unexpected methods; bodies of the
# wrong media type): about 4,100 requests in all, a minute on two cores.
MAX_EXAMPLES = 6
ERROR_FIELDS = {"message", "type", "param", "code"}

# Hypothesis caches what it learns (constants, unicode tables) under ./.hypothesis, some of
# it while tests are collected: keep it out of the repository from import on. The example
# database is off besides (`database: none`).
if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "prism-tests-hypothesis")

# Loaded eagerly: the spec is a file, and the fixtures' base URL and key go to each call.
# (schemathesis.pytest.from_fixture would load it lazily, but in 4.32.5 it reads
# `Node._nodeid`, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_path(
    SPEC,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # Schemathesis already turns Hypothesis's deadline off; its health checks (slow
            # or large generated bodies) only make a fuzz over HTTP flaky.
            "suppress-health-check": ["all"],
            "request-timeout": 30,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "database": "none",
                # A failure is reported with the request that failed, as curl; shrinking it
                # would send hundreds more and break the time bound.
                "no-shrink": True,
                # Every request carries the fixture's key, so they get past authentication.
                "with-security-parameters": False,
            },
            # Every phase a parametrized test runs (examples, coverage, fuzzing) is on.
            # Uploads (multipart POST /files) are kept: generated files are a few bytes.
        }
    ),
)


@pytest.fixture(scope="module")
def secret(issue_key: IssueKey) -> str:
    """A fresh key, in a fresh org."""
    return issue_key()[1].secret


@pytest.fixture(scope="module")
def ids(engine_gateway: DataPlane, secret: str) -> dict[str, str]:
    """One object of each kind in the key's org, by the path parameter that names it."""
    with openai.OpenAI(base_url=engine_gateway.url, api_key=secret, max_retries=0) as sdk:
        assistant = sdk.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
        file = sdk.files.create(
            file=("notes.txt", b"The warranty lasts two years."), purpose="assistants"
        )
        store = sdk.vector_stores.create(name="Fuzz", file_ids=[file.id])
        batch = sdk.vector_stores.file_batches.create(store.id, file_ids=[file.id])
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Hi there"}])
        message = sdk.beta.threads.messages.list(thread.id).data[0]
        run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        step = sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    return {
        "assistant_id": assistant.id,
        "file_id": file.id,
        "vector_store_id": store.id,
        "batch_id": batch.id,
        "thread_id": thread.id,
        "message_id": message.id,
        "run_id": run.id,
        "step_id": step.id,
    }


def is_openai_error(content: bytes) -> bool:
    try:
        body: Any = json.loads(content)
    except ValueError:
        return False
    if not isinstance(body, dict) or set(body) != {"error"}:
        return False
    error = body["error"]
    return (
        isinstance(error, dict)
        and set(error) == ERROR_FIELDS
        and isinstance(error["message"], str)
        and bool(error["message"])
        and isinstance(error["type"], str)
        and all(
            error[field] is None or isinstance(error[field], str) for field in ("param", "code")
        )
    )


# Checks as schemathesis calls them. The report names the operation itself: pytest 9.2 gives
# every operation's item the test's node id (schemathesis 4.32.5 puts the label in the name).


def not_a_server_error(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    assert response.status_code < 500, (
        f"{case.operation.label}: {response.status_code} {response.content[:2000]!r}"
    )


def openai_error_body(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    assert response.status_code < 400 or is_openai_error(response.content), (
        f"{case.operation.label}: {response.status_code} without OpenAI's error body: "
        f"{response.content[:2000]!r}"
    )


@schema.parametrize()
def test_gateway_answers_openai_errors(
    case: schemathesis.Case, engine_gateway: DataPlane, secret: str, ids: dict[str, str]
) -> None:
    # Generated ids name nothing, and the gateway answers 404 for them itself: the org's
    # objects take the requests on to the engine. Deletions keep the generated ids, so the
    # objects outlive the module and the gateway's own 404s are fuzzed too.
    if case.method != "DELETE" and case.path_parameters:
        for name in case.path_parameters:
            case.path_parameters[name] = ids[name]
    if isinstance(case.body, dict) and isinstance(case.body.get("assistant_id"), str):
        case.body["assistant_id"] = ids["assistant_id"]
    case.call_and_validate(
        base_url=engine_gateway.url,
        headers={"Authorization": f"Bearer {secret}", "OpenAI-Beta": "assistants=v2"},
        checks=[not_a_server_error, openai_error_body],
    )
