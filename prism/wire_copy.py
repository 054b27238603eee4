"""Copies between prism.v1 messages and the records whose fields have the same names.

Where the wire and the domain agree on a name, copying by name is the whole conversion, so
a field added to both needs no edit here. A message field the record lacks is an
AttributeError the first time the conversion runs: a name that drifted fails in the tests
instead of being sent empty. Only the message's own fields are read from a record, so what a
message does not declare (a secret's hash, say) never reaches the wire.
"""

from dataclasses import fields
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

MessageT = TypeVar("MessageT", bound=Message)
RecordT = TypeVar("RecordT")


def to_message(message_type: type[MessageT], record: object, **given: Any) -> MessageT:
    """`message_type` with each field read from `record`'s attribute of that name, except
    those `given`, for fields whose wire form differs (nested messages, other names). A
    datetime becomes a google.protobuf.Timestamp; None leaves a message field unset."""
    values = {
        name: _wire_value(getattr(record, name))
        for name in _field_names(message_type)
        if name not in given
    }
    return message_type(**values, **given)


@cache
def _field_names(message_type: type[Message]) -> tuple[str, ...]:
    # Check answers with several of these per request; the descriptor walk is done once.
    return tuple(field.name for field in message_type.DESCRIPTOR.fields)


def _wire_value(value: object) -> object:
    if isinstance(value, datetime):
        stamp = Timestamp()
        stamp.FromDatetime(value)
        return stamp
    return value


def from_message(record_type: type[RecordT], message: Message) -> RecordT:
    """The dataclass `record_type` with each of its fields read from the message's field of
    that name."""
    return record_type(
        **{field.name: getattr(message, field.name) for field in fields(record_type) if field.init}  # type: ignore[arg-type]
    )
