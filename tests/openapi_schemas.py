"""The vendored OpenAI spec (spec/): its operations, and validation of response bodies
against its component schemas."""

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SPEC = Path(__file__).resolve().parents[1] / "spec" / "openai-assistants-openapi.yaml"


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())


def spec_operations() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (METHOD, /v1 path template, the operation as the spec describes it)."""
    return {
        operation["operationId"]: (method.upper(), "/v1" + path, operation)
        for path, item in spec()["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "delete", "put", "patch")
    }


@cache
def _components() -> dict[str, Any]:
    return _with_nulls(spec()["components"])


def _with_nulls(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` (which the spec uses, alone or as an `allOf` member
    beside a `$ref`) as JSON Schema says it: the schema or null. JSON Schema validators
    ignore `nullable`, and would reject the nulls the spec allows (a run's
    `required_action`, say)."""
    if isinstance(node, list):
        return [_with_nulls(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _with_nulls(value) for key, value in node.items()}
    members = node.get("allOf")
    if isinstance(members, list) and {"nullable": True} in members:
        rest = [member for member in members if member != {"nullable": True}]
        node = {**node, "allOf": rest, "nullable": True}
    if node.pop("nullable", False) is True:
        return {"anyOf": [node, {"type": "null"}]}
    return node


@cache
def _validator(schema_name: str) -> jsonschema.Draft202012Validator:
    # The spec is OpenAPI 3.1, whose schemas are JSON Schema 2020-12; its `$ref`s point into
    # `#/components/schemas`, so the components ride along in the root schema.
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": _components()}
    return jsonschema.Draft202012Validator(root)


def validate(schema_name: str, body: Any) -> None:
    """Raises jsonschema.ValidationError when body is not a `schema_name` of the spec."""
    _validator(schema_name).validate(body)


def validated(schema_name: str, body: dict[str, Any]) -> dict[str, Any]:
    """`body`, once validated as a `schema_name` of the spec."""
    validate(schema_name, body)
    return body
