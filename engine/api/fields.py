"""JSON request bodies read field by field, with OpenAI's validation errors: bad input is a
400 `invalid_request_error` naming the field (`param`) in OpenAI's wording."""

import json
from collections.abc import Collection
from typing import Any

from quart import current_app, request

from ..errors import ApiError, body_too_large
from ..store import JSON, Store

STORE = "engine.store"
# The largest JSON body any operation takes, as the data plane allows.
JSON_BODY_LIMIT = 8 * 1024 * 1024

_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
    "contact us through our help center at help.openai.com.)"
)


def store() -> Store:
    return current_app.extensions[STORE]


async def json_body(allowed: Collection[str]) -> "Fields":
    """The request's JSON object; an empty body counts as `{}` so that required fields are
    reported by name rather than as unparseable JSON."""
    length = request.content_length
    if length is not None and length > JSON_BODY_LIMIT:
        raise body_too_large(JSON_BODY_LIMIT)
    # Read here rather than by get_data: the app's body limit is an upload's, far larger.
    raw = bytearray()
    async for chunk in request.body:
        raw += chunk
        if len(raw) > JSON_BODY_LIMIT:
            raise body_too_large(JSON_BODY_LIMIT)
    if not raw.strip():
        return Fields({})
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError
        raise ApiError(400, _BAD_JSON, code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"Invalid body: expected an object, but got {_kind(data)} instead.")
    return Fields(data).only(allowed)


async def metadata_change() -> dict[str, str] | None:
    """What the body of a modify request that can change only `metadata` sets it to (null
    clears it); None when the body leaves metadata out."""
    body = await json_body(("metadata",))
    metadata = body.metadata()
    return (metadata or {}) if body.has("metadata") else None


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, though Python's parser accepts them.
    raise ValueError(name)


_EXPECTED = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    dict: "an object",
    list: "an array",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for kind in (bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return _EXPECTED[kind]
    return "an unknown type"


def expect(value: Any, kind: type, param: str) -> Any:
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise ApiError(
            400,
            f"Invalid type for '{param}': expected {_EXPECTED[kind]}, "
            f"but got {_kind(value)} instead.",
            param=param,
            code="invalid_type",
        )
    return value


def missing(param: str) -> ApiError:
    return ApiError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def invalid_value(param: str, value: Any, choices: Collection[str]) -> ApiError:
    supported = ", ".join(f"'{choice}'" for choice in choices)
    return ApiError(
        400,
        f"Invalid value: '{value}'. Supported values are: {supported}.",
        param=param,
        code="invalid_value",
    )


class Fields:
    """A JSON object whose fields are read with their expected type. Absent and null read as
    None; nested objects are Fields too, so errors carry the full param path
    (`messages[0].content`)."""

    def __init__(self, data: JSON, prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    @classmethod
    def of(cls, value: Any, param: str) -> "Fields":
        return cls(expect(value, dict, param), param)

    def param(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def has(self, name: str) -> bool:
        return name in self.data

    def only(self, allowed: Collection[str]) -> "Fields":
        for name in self.data:
            if name not in allowed:
                raise ApiError(
                    400,
                    f"Unknown parameter: '{self.param(name)}'.",
                    param=self.param(name),
                    code="unknown_parameter",
                )
        return self

    def _value(self, name: str, kind: type, required: bool) -> Any:
        value = self.data.get(name)
        if value is None:
            if required:
                raise missing(self.param(name))
            return None
        return expect(value, kind, self.param(name))

    def string(
        self,
        name: str,
        *,
        choices: Collection[str] | None = None,
        max_length: int | None = None,
        required: bool = False,
    ) -> str | None:
        value = self._value(name, str, required)
        if value is not None and choices is not None and value not in choices:
            raise invalid_value(self.param(name), value, choices)
        if value is not None and max_length is not None and len(value) > max_length:
            raise ApiError(
                400,
                f"Invalid '{self.param(name)}': string too long. Expected a string with "
                f"maximum length {max_length}, but got a string with length {len(value)} "
                "instead.",
                param=self.param(name),
                code="string_above_max_length",
            )
        return value

    def required_string(
        self, name: str, *, choices: Collection[str] | None = None, max_length: int | None = None
    ) -> str:
        value = self.string(name, choices=choices, max_length=max_length, required=True)
        assert value is not None  # string(required=True) raised otherwise
        return value

    def number(self, name: str, *, minimum: float, maximum: float) -> float | None:
        value = self._value(name, float, False)
        if value is None:
            return None
        if value < minimum:
            bound = f">= {minimum}"
        elif value > maximum:
            bound = f"<= {maximum}"
        else:
            return value
        raise ApiError(
            400,
            f"Invalid '{self.param(name)}': decimal must be {bound}, but got {value} instead.",
            param=self.param(name),
            code="invalid_value",
        )

    def object(self, name: str) -> "Fields | None":
        value = self._value(name, dict, False)
        return None if value is None else Fields(value, self.param(name))

    def required_object(self, name: str) -> "Fields":
        return Fields(self._value(name, dict, True), self.param(name))

    def array(
        self, name: str, *, required: bool = False, min_items: int = 0, max_items: int | None = None
    ) -> list[Any] | None:
        value = self._value(name, list, required)
        if value is None:
            return None
        if len(value) < min_items:
            raise ApiError(
                400,
                f"Invalid '{self.param(name)}': empty array. Expected an array with minimum "
                f"length {min_items}, but got an empty array instead.",
                param=self.param(name),
                code="empty_array",
            )
        if max_items is not None and len(value) > max_items:
            raise ApiError(
                400,
                f"Invalid '{self.param(name)}': array too long. Expected an array with maximum "
                f"length {max_items}, but got an array with length {len(value)} instead.",
                param=self.param(name),
                code="array_above_max_length",
            )
        return value

    def strings(self, name: str, *, max_items: int | None = None) -> list[str] | None:
        values = self.array(name, max_items=max_items)
        if values is None:
            return None
        return [expect(v, str, f"{self.param(name)}[{i}]") for i, v in enumerate(values)]

    def items(self, name: str, **bounds: Any) -> list["Fields"] | None:
        """An array of objects, each read as Fields (`name[i]`)."""
        values = self.array(name, **bounds)
        if values is None:
            return None
        return [Fields.of(v, f"{self.param(name)}[{i}]") for i, v in enumerate(values)]

    def metadata(self, name: str = "metadata") -> dict[str, str] | None:
        """Up to 16 string pairs, keys up to 64 and values up to 512 characters."""
        fields = self.object(name)
        if fields is None:
            return None
        if len(fields.data) > 16:
            raise ApiError(
                400,
                f"Invalid '{fields.prefix}': too many properties. Expected an object with at "
                f"most 16 properties, but got an object with {len(fields.data)} properties "
                "instead.",
                param=fields.prefix,
                code="object_above_max_properties",
            )
        for key in fields.data:
            if len(key) > 64:
                raise ApiError(
                    400,
                    f"Invalid '{fields.prefix}': metadata keys can be at most 64 characters, "
                    f"but got a key with length {len(key)}.",
                    param=fields.prefix,
                    code="invalid_value",
                )
            fields.required_string(key, max_length=512)
        return dict(fields.data)
