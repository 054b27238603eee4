"""What a request's JSON body says, for the control plane's Check: the models it names, the
objects it refers to, the assistant a new run uses (or the run tool outputs resume), whether
it makes vector stores inline, and a new run's token bounds.

The body is decoded with every object as its list of key/value pairs, so a key given twice is
seen twice, whichever copy the upstream would use: each copy is checked.

Object references are found by name at any depth: every string under `assistant_id`,
`thread_id`, `file_id`, `file_ids` and `vector_store_ids`. That covers every field of the
Assistants API's request bodies that names an object (messages' `attachments[].file_id` and
`content[].image_file.file_id`, `tool_resources.code_interpreter.file_ids`,
`tool_resources.file_search.vector_store_ids` and `.vector_stores[].file_ids`, a new thread's
`thread.messages` and `thread.tool_resources`, runs' `additional_messages`, vector store
files' `file_id` and batches' `file_ids` and `files[].file_id`) without a schema per route.
The subtrees that hold the caller's own free-form data are not searched, so a metadata key
named `file_id` is no reference: `metadata`, vector store files' `attributes`, search
`filters`, `tools` (function parameters are JSON schemas) and `response_format`.

Each reference carries the `param` the upstream's refusal would name were the object
missing, so the gateway's refusal of another org's object reads as the upstream's: a file or
vector store is named by its place in the body (`attachments[0].file_id`,
`tool_resources.code_interpreter.file_ids`,
`tool_resources.file_search.vector_stores[0].file_ids`,
`tool_resources.file_search.vector_store_ids`), and a file in the path is `id`. The
upstream's 404s for the other kinds name no param, so theirs is empty. A field of the wrong
type is a 400 naming its place the same way.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prism.operations import ASSISTANT, FILE, THREAD, VECTOR_STORE, Operation
from prism.v1.authorizer_pb2 import ObjectKind, ObjectRef

from .errors import malformed_json


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs, so a key given twice is seen twice."""


_DECODER = json.JSONDecoder(object_pairs_hook=_Pairs)

# Fields naming one object.
_SINGLE = {"assistant_id": ASSISTANT, "thread_id": THREAD, "file_id": FILE}
# Fields naming a list of objects.
_LISTS = {"file_ids": FILE, "vector_store_ids": VECTOR_STORE}
_FREE_FORM = frozenset({"metadata", "attributes", "filters", "tools", "response_format"})
# Arrays whose entries are vector stores made with an assistant or thread.
_NEW_VECTOR_STORES = "vector_stores"
# The upstream's refusal names a param only for files and vector stores.
_NAMED_KINDS = frozenset({FILE, VECTOR_STORE})
# How the upstream's 404 names a path's object.
_PATH_PARAMS = {FILE: "id"}
# A run's token bounds, sent to Check for its budget reservation.
_TOKEN_BOUNDS = frozenset({"max_prompt_tokens", "max_completion_tokens"})
# More than any model's context; keeps an absurd bound within Check's int64 (and exact in
# the Lua scripts' doubles once priced).
_MOST_TOKENS = 10**9


@dataclass
class RequestFacts:
    models: list[str] = field(default_factory=list)
    # The objects the caller must own, the path's first, then the body's, each once.
    objects: list[ObjectRef] = field(default_factory=list)
    # The assistant a new run uses, or the run that tool outputs set back to work: Check
    # holds its remembered model to the allowed models when the body names none.
    model_object_id: str = ""
    # The body makes vector stores inline (`tool_resources.file_search.vector_stores`).
    makes_vector_stores: bool = False
    # A run's token bounds (0: not given), which its budget reservation holds.
    max_prompt_tokens: int = 0
    max_completion_tokens: int = 0

    @property
    def named_vector_stores(self) -> frozenset[str]:
        """The existing vector stores the request names (each must be the org's): never
        taken for ones it made inline."""
        return frozenset(ref.id for ref in self.objects if ref.kind == VECTOR_STORE)


def request_facts(route: Operation, path_parameters: dict[str, str], body: bytes) -> RequestFacts:
    """What Check needs to know about a request; 400 when the body is not a JSON object or a
    field it inspects has the wrong type."""
    facts = RequestFacts()
    if route.path_object is not None:
        name, kind = route.path_object
        facts.objects.append(
            ObjectRef(id=path_parameters[name], kind=kind, param=_PATH_PARAMS.get(kind, ""))
        )
    if route.resumes_run:
        facts.model_object_id = path_parameters["run_id"]
    if not body:
        return facts

    document = _decode(body)
    for name, value in document:
        if name in route.model_fields:
            if isinstance(value, str):
                facts.models.append(value)
            elif value is not None:
                raise malformed_json(f"'{name}' must be a string.", param=name)
        elif name == "assistant_id" and route.starts_run and isinstance(value, str):
            facts.model_object_id = value
        elif name in _TOKEN_BOUNDS and route.uses_model:
            # Given twice, the larger: the reservation must hold whichever the upstream uses.
            setattr(facts, name, max(getattr(facts, name), _token_bound(name, value)))

    seen: set[tuple[str, int]] = {(ref.id, ref.kind) for ref in facts.objects}
    for ref in _references(document, facts):
        if (ref.id, ref.kind) not in seen:
            seen.add((ref.id, ref.kind))
            facts.objects.append(ref)
    return facts


def _token_bound(name: str, value: Any) -> int:
    """A run's `max_*_tokens`, 0 when null or not positive (the upstream judges those)."""
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise malformed_json(f"'{name}' must be an integer.", param=name)
    return min(max(value, 0), _MOST_TOKENS)


def _decode(body: bytes) -> "_Pairs":
    try:
        document = _DECODER.decode(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise malformed_json("the body is not UTF-8.") from None
    except ValueError as error:
        raise malformed_json(f"{error}.") from None
    except RecursionError:
        raise malformed_json("the body is nested too deeply.") from None
    if not isinstance(document, _Pairs):
        raise malformed_json("the body must be a JSON object.")
    return document


def _references(document: _Pairs, facts: RequestFacts) -> Iterator[ObjectRef]:
    # Iterative, so a deeply nested body (the decoder accepted it) cannot exhaust the stack;
    # each value goes with its place in the body, as the upstream names it.
    pending: list[tuple[Any, str]] = [(document, "")]
    while pending:
        value, place = pending.pop()
        children: list[tuple[Any, str]] = []
        if isinstance(value, _Pairs):
            for name, child in value:
                field = f"{place}.{name}" if place else name
                if name in _SINGLE:
                    yield from _single(field, child, _SINGLE[name])
                elif name in _LISTS:
                    yield from _listed(field, child, _LISTS[name])
                elif name not in _FREE_FORM:
                    if name == _NEW_VECTOR_STORES and isinstance(child, list):
                        facts.makes_vector_stores = facts.makes_vector_stores or bool(child)
                    children.append((child, field))
        elif isinstance(value, list):
            children = [(item, f"{place}[{i}]") for i, item in enumerate(value)]
        pending.extend(reversed(children))


def _single(field: str, value: Any, kind: ObjectKind.ValueType) -> Iterator[ObjectRef]:
    if isinstance(value, str):
        yield ObjectRef(id=value, kind=kind, param=_param(field, kind))
    elif value is not None:
        raise malformed_json(f"'{field}' must be a string.", param=field)


def _listed(field: str, value: Any, kind: ObjectKind.ValueType) -> Iterator[ObjectRef]:
    if value is None:
        return
    if not isinstance(value, list) or isinstance(value, _Pairs):
        raise malformed_json(f"'{field}' must be an array of strings.", param=field)
    for item in value:
        if not isinstance(item, str):
            raise malformed_json(f"'{field}' must be an array of strings.", param=field)
        yield ObjectRef(id=item, kind=kind, param=_param(field, kind))


def _param(field: str, kind: ObjectKind.ValueType) -> str:
    return field if kind in _NAMED_KINDS else ""
