"""Redaction: what the request log must never hold, replaced by `[REDACTED]`.

Applied to every text the log keeps (bodies, path, trace id) and to the caller's metadata,
whatever the org's body policy:
- `Bearer <token>` and `Authorization: <value>`, wherever they appear;
- key-like values: `sk-…` (`sk-prism-…` client keys, `sk-proj-…` OpenAI keys and their kin);
- the values of JSON fields whose name says they hold a credential (`api_key`, `apikey`,
  `secret`, `password`, `authorization`, `token`, `access_token`, `client_secret`, …),
  including a string value cut short at the end of a truncated text;
- literal secrets the data plane knows of, such as the upstream credential Check returned.

Names ending in `tokens` (`max_prompt_tokens`) count tokens, not credentials: they are kept.
"""

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"

# Key-like values: `sk-` and at least a few key characters (`sk-proj-…`, `sk-prism-…`).
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-]{4,}")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")
# The whole value of a header-like `Authorization: Basic …` (to the end of its line).
_AUTHORIZATION_HEADER = re.compile(r"(?i)\b(authorization)(\s*[:=]\s*)(?!\")[^\r\n\"',;&]+")
# A JSON member whose value is a string; the value may be cut off by the end of the text.
_JSON_STRING_MEMBER = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:\s*)"((?:[^"\\]|\\.)*)("|\Z)')
_SENSITIVE_NAME = re.compile(
    r"(?i)(api[_\-]?key|secret|password|passwd|authorization|credential|(?:^|[_\-])token$)"
)


def sensitive_name(name: str) -> bool:
    """Whether a field of this name holds a credential."""
    return _SENSITIVE_NAME.search(name) is not None


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every credential replaced (see module doc)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    if not _may_hold_a_credential(text):
        return text
    text = _JSON_STRING_MEMBER.sub(_redact_member, text)
    text = _BEARER.sub(r"\1 " + REDACTED, text)
    text = _AUTHORIZATION_HEADER.sub(r"\1\2" + REDACTED, text)
    return _KEY_LIKE.sub(REDACTED, text)


def _may_hold_a_credential(text: str) -> bool:
    """False when no pattern above can match: each needs a `"`, `sk-`, `bearer` or
    `authorization` in the text. Only ASCII text is ruled out this way, as the patterns'
    case folding matches a few non-ASCII letters too (U+0131, dotless i, for `i`). Most
    texts logged (a path, a trace id) hold none, and skip the scans."""
    if not text.isascii() or '"' in text or "sk-" in text:
        return True
    lowered = text.lower()
    return "bearer" in lowered or "authorization" in lowered


def redact_value(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A JSON value with credentials replaced: sensitive members' values whole, and every
    string (keys included) as by redact_text."""
    secrets = tuple(secrets)
    if isinstance(value, dict):
        return {
            redact_text(name, secrets): REDACTED
            if sensitive_name(name) and item is not None
            else redact_value(item, secrets)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [redact_value(item, secrets) for item in value]
    if isinstance(value, str):
        return redact_text(value, secrets)
    return value


def _redact_member(match: re.Match[str]) -> str:
    name, separator, _, closing = match.groups()
    if not sensitive_name(name):
        return match.group(0)
    return f'"{name}"{separator}"{REDACTED}{closing}'
