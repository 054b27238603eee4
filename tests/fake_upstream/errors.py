"""OpenAI's error shape. Any module raises ApiError; the app renders it."""

from typing import Any


def error_body(
    message: str,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(message, type_, param, code)


def not_found(kind: str, object_id: str) -> ApiError:
    return ApiError(404, f"No {kind} found with id '{object_id}'.")


def file_not_found(file_id: str, param: str = "file_id") -> ApiError:
    # The Files API words its 404 differently from the Assistants API.
    return ApiError(404, f"No such File object: {file_id}", param=param)
