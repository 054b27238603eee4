"""Validation of response bodies against the shared OpenAI spec's component schemas."""

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SPEC = Path(__file__).resolve().parents[2] / "shared" / "openai-assistants-openapi.yaml"


@cache
def _components() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())["components"]


@cache
def _validator(schema_name: str) -> jsonschema.Draft202012Validator:
    # The spec is OpenAPI 3.1, whose schemas are JSON Schema 2020-12; its `$ref`s point into
    # `#/components/schemas`, so the components ride along in the root schema.
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": _components()}
    return jsonschema.Draft202012Validator(root)


def validate(schema_name: str, body: Any) -> None:
    """Raises jsonschema.ValidationError when body is not a `schema_name` of the spec."""
    _validator(schema_name).validate(body)
