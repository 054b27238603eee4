"""The operation table (prism/operations.py) is the spec's Assistants API, no more and no
less, and both the gateway and the engine serve exactly its operations from it."""

from typing import Any

from quart import Quart

from dataplane import routes
from dataplane.proxy import proxy_blueprint
from engine.api import BLUEPRINTS
from prism.operations import OPERATIONS, BodyKind, Operation
from tests.openapi_schemas import spec as openapi_spec
from tests.openapi_schemas import spec_operations

_BODY_KINDS = {"application/json": BodyKind.JSON, "multipart/form-data": BodyKind.MULTIPART}


def _request_properties(spec: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = next(iter(content.values()), {}).get("schema", {})
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return set(schema.get("properties", {}))


def test_the_table_has_every_operation_of_the_spec_and_nothing_else() -> None:
    described = spec_operations()
    table = {op.operation_id: (op.method, op.template) for op in OPERATIONS}

    assert len(OPERATIONS) == len(table) == 44
    assert table == {name: (method, path) for name, (method, path, _) in described.items()}


def test_each_operation_takes_the_body_and_path_ids_the_spec_gives_it() -> None:
    spec = openapi_spec()
    for name, (_, _, described) in spec_operations().items():
        operation = next(op for op in OPERATIONS if op.operation_id == name)
        content = described.get("requestBody", {}).get("content", {})
        assert operation.body is (_BODY_KINDS[next(iter(content))] if content else BodyKind.NONE), (
            name
        )
        in_path = [p["name"] for p in described.get("parameters", []) if p.get("in") == "path"]
        assert list(operation.path_ids) == in_path, name
        # The gateway reads the body's model where the spec's request has one.
        has_model = "model" in _request_properties(spec, described)
        assert operation.model_fields == (("model",) if has_model else ()), name


def test_the_path_object_is_the_first_id_of_its_path() -> None:
    for operation in OPERATIONS:
        if operation.path_ids:
            assert operation.path_object is not None
            assert operation.path_object[0] == operation.path_ids[0]
        else:
            assert operation.path_object is None


def _served(app: Quart) -> dict[str, tuple[str, set[str]]]:
    """endpoint (without its blueprint) -> (URL rule, methods), for the /v1 rules."""
    return {
        rule.endpoint.rpartition(".")[2]: (rule.rule, set(rule.methods or ()) - {"HEAD", "OPTIONS"})
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/v1")
    }


def _expected(rule_of: Any) -> dict[str, tuple[str, set[str]]]:
    return {op.operation_id: (rule_of(op), {op.method}) for op in OPERATIONS}


def test_the_gateway_routes_each_operation_of_the_table_once() -> None:
    app = Quart(__name__, static_folder=None)
    app.url_map.converters.update(routes.CONVERTERS)
    app.register_blueprint(proxy_blueprint())

    assert _served(app) == _expected(routes.url_rule)
    assert len(list(app.url_map.iter_rules())) == 44


def test_the_engine_has_one_handler_for_each_operation_of_the_table() -> None:
    app = Quart(__name__, static_folder=None)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    assert _served(app) == _expected(Operation.url_rule)
    assert len(list(app.url_map.iter_rules())) == 44
