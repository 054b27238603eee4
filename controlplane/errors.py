"""Failures of admin operations, each with a message an operator can act on.

The servicer maps each class to its gRPC status code; the domain never imports grpc.
"""


class AdminError(Exception):
    """Base class; `str(error)` is the message sent to the caller."""


class InvalidArgument(AdminError):
    pass


class NotFound(AdminError):
    pass


class AlreadyExists(AdminError):
    pass


class FailedPrecondition(AdminError):
    pass
