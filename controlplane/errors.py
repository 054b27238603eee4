"""Failures of control-plane operations, each with a message the caller can act on.

The servicers map each class to its gRPC status code; the domain never imports grpc.
"""


class DomainError(Exception):
    """Base class; `str(error)` is the message sent to the caller."""


class InvalidArgument(DomainError):
    pass


class NotFound(DomainError):
    pass


class AlreadyExists(DomainError):
    pass


class FailedPrecondition(DomainError):
    pass


class PermissionDenied(DomainError):
    """The caller is known but may not do this (a grant that is forged or expired)."""


class Unavailable(DomainError):
    """Redis did not answer; the caller may retry, and the data plane fails closed."""


class CountersUnavailable(Unavailable):
    """Redis answers reads but refused to update the rate-limit counters (out of memory, a
    read-only replica); with PRISM_RATELIMIT_FAIL_OPEN the request may pass uncounted."""
