"""Request helpers the blueprints share: the app's store, and JSON bodies read field by
field with OpenAI's validation errors, so bad input is a 400 naming the field."""

import json
from collections.abc import Collection
from typing import Any

from quart import current_app, request

from .errors import ApiError
from .store import JSON, Store

STORE_EXTENSION = "fake_upstream.store"

_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)


def store() -> Store:
    return current_app.extensions[STORE_EXTENSION]


async def json_body(allowed: Collection[str]) -> "Fields":
    """The request's JSON object; an empty body counts as `{}` so that required fields
    are reported by name rather than as unparseable JSON."""
    raw = await request.get_data()
    if not raw.strip():
        return Fields({})
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError
        raise ApiError(400, _BAD_JSON) from None
    if not isinstance(data, dict):
        raise ApiError(400, f"Invalid body: expected a JSON object, but got {_kind(data)}.")
    return Fields(data).only(allowed)


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


class Fields:
    """A JSON object whose fields are read with their expected type. Absent and null
    read as None; nested objects are Fields too, so errors carry the full param path
    (`thread.messages[0].content`)."""

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
            supported = ", ".join(f"'{choice}'" for choice in choices)
            raise ApiError(
                400,
                f"Invalid value: '{value}'. Supported values are: {supported}.",
                param=self.param(name),
                code="invalid_value",
            )
        if value is not None and max_length is not None and len(value) > max_length:
            raise ApiError(
                400,
                f"Invalid '{self.param(name)}': string too long. Expected a string with "
                f"maximum length {max_length}, but got a string with length {len(value)}.",
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

    def number(
        self, name: str, *, minimum: float | None = None, maximum: float | None = None
    ) -> float | None:
        return self._in_range(name, self._value(name, float, False), minimum, maximum)

    def integer(
        self, name: str, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        return self._in_range(name, self._value(name, int, False), minimum, maximum)

    def _in_range(self, name: str, value: Any, minimum: float | None, maximum: float | None) -> Any:
        if value is None:
            return None
        if minimum is not None and value < minimum:
            bound = f">= {minimum}"
        elif maximum is not None and value > maximum:
            bound = f"<= {maximum}"
        else:
            return value
        raise ApiError(
            400,
            f"Invalid '{self.param(name)}': expected a value {bound}, but got {value} instead.",
            param=self.param(name),
            code="invalid_value",
        )

    def boolean(self, name: str) -> bool | None:
        return self._value(name, bool, False)

    def object(self, name: str) -> "Fields | None":
        value = self._value(name, dict, False)
        return None if value is None else Fields(value, self.param(name))

    def required_object(self, name: str) -> "Fields":
        return Fields(self._value(name, dict, True), self.param(name))

    def array(
        self,
        name: str,
        *,
        required: bool = False,
        min_items: int = 0,
        max_items: int | None = None,
    ) -> list[Any] | None:
        value = self._value(name, list, required)
        if value is None:
            return None
        if len(value) < min_items or (max_items is not None and len(value) > max_items):
            most = f" and at most {max_items}" if max_items is not None else ""
            raise ApiError(
                400,
                f"Invalid '{self.param(name)}': expected an array with at least {min_items}"
                f"{most} items, but got {len(value)}.",
                param=self.param(name),
                code="invalid_value",
            )
        return value

    def strings(
        self,
        name: str,
        *,
        required: bool = False,
        min_items: int = 0,
        max_items: int | None = None,
    ) -> list[str] | None:
        values = self.array(name, required=required, min_items=min_items, max_items=max_items)
        if values is None:
            return None
        return [expect(v, str, f"{self.param(name)}[{i}]") for i, v in enumerate(values)]

    def metadata(self, name: str = "metadata") -> dict[str, str] | None:
        """Up to 16 string pairs, keys up to 64 and values up to 512 characters."""
        fields = self.object(name)
        if fields is None:
            return None
        if len(fields.data) > 16:
            raise ApiError(
                400,
                f"Invalid '{fields.prefix}': too many properties. Expected an object with at "
                f"most 16 properties, but got an object with {len(fields.data)} properties.",
                param=fields.prefix,
                code="object_above_max_properties",
            )
        for key in fields.data:
            if len(key) > 64:
                raise ApiError(
                    400,
                    f"Invalid '{fields.prefix}': metadata keys can be at most 64 characters.",
                    param=fields.prefix,
                )
            expect(fields.data[key], str, fields.param(key))
            fields.string(key, max_length=512)
        return dict(fields.data)
