"""The gateway's routes: the operation table (prism/operations.py) as URL rules, the path
parameter they match, the body limits, and which responses the gateway reads.

The proxy registers one URL rule per operation and sends the operation's `name`
(`"<METHOD> <template>"`) to the control plane's Check; nothing else repeats the table.
"""

from werkzeug.routing import BaseConverter

from prism.operations import InlineStores, Operation

MIB = 1024 * 1024
# Limits on what a client may send; bodies over them get 413 before anything is forwarded.
JSON_BODY_LIMIT = 8 * MIB
# OpenAI takes files up to 512 MB; the upload's body also carries the multipart framing.
UPLOAD_BODY_LIMIT = 513 * MIB


class ObjectIdConverter(BaseConverter):
    """A path parameter: one segment, and never `.` or `..`.

    No object id is a dot segment, and a server or proxy in front of the upstream may resolve
    one, so `DELETE /v1/threads/t/messages/..` (deleteMessage, as Check saw it) would arrive as
    `DELETE /v1/threads/t` (deleteThread). Such paths match no route: 404 unknown URL.
    """

    regex = r"(?!\.\.?(?![^/]))[^/]+"
    # Set explicitly: werkzeug would otherwise infer False from the `/` in the regex.
    part_isolating = True


_OBJECT_ID = "object_id"
# The URL map's converters the route rules use; the app registers them.
CONVERTERS = {_OBJECT_ID: ObjectIdConverter}


def url_rule(operation: Operation) -> str:
    return operation.url_rule(_OBJECT_ID)


def observed(operation: Operation) -> bool:
    """Whether the gateway reads the operation's responses for the control plane's Record."""
    return (
        bool(operation.creates or operation.modifies)
        or operation.inline_stores is not InlineStores.NONE
        or operation.deletes
        or operation.shows_runs
        or operation.shows_steps
    )
