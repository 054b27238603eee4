"""The engine's errors, in OpenAI's shape and wording (bodies from prism/openai_errors.py).

Any module raises ApiError; the app (app.py) answers it. Wording follows OpenAI's own, so a
client written against OpenAI reads the same messages.
"""

from typing import Any, TypeVar

from prism.openai_errors import INVALID_REQUEST, error_body, unknown_url_message

Found = TypeVar("Found")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str = INVALID_REQUEST,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = error_body(message, type_, code, param)


def not_found(kind: str, object_id: str) -> ApiError:
    """`No assistant found with id 'asst_x'.`, as the Assistants API words it."""
    return ApiError(404, f"No {kind} found with id '{object_id}'.")


def found(value: Found | None, kind: str, object_id: str) -> Found:
    """`value`, unless it is None: then the 404 of the `kind` object that does not exist."""
    if value is None:
        raise not_found(kind, object_id)
    return value


def file_not_found(file_id: str, param: str = "file_id") -> ApiError:
    # The Files API words its 404 differently from the Assistants API.
    return ApiError(404, f"No such File object: {file_id}", param=param)


def unknown_url(method: str, path: str) -> ApiError:
    return ApiError(404, unknown_url_message(method, path), code="unknown_url")


def missing_api_key() -> ApiError:
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        code="invalid_api_key",
    )


def incorrect_api_key() -> ApiError:
    # The key presented is not echoed: error bodies end up in clients' logs.
    return ApiError(401, "Incorrect API key provided.", code="invalid_api_key")


def body_too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"The request body is larger than this endpoint's limit of {limit} bytes.",
        code="request_too_large",
    )
