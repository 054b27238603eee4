"""Domain errors as gRPC statuses, for both servicers."""

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import grpc

from controlplane import errors

Request = TypeVar("Request")
Reply = TypeVar("Reply")
Handler = Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Reply]]

STATUS = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

log = logging.getLogger("prism.controlplane")


def aborts_on_domain_error(handler: Handler[Request, Reply]) -> Handler[Request, Reply]:
    """Ends the call with the error's status and message instead of an UNKNOWN traceback."""

    @wraps(handler)
    async def translated(self: Any, request: Request, context: grpc.aio.ServicerContext) -> Reply:
        try:
            return await handler(self, request, context)
        except errors.DomainError as error:
            if isinstance(error, errors.Unavailable):
                log.warning("%s failed: %s", handler.__name__, error)
            status = next(code for kind, code in STATUS.items() if isinstance(error, kind))
            await context.abort(status, str(error))
            raise  # abort raises; this keeps type checkers aware that nothing returns

    return translated
