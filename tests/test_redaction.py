"""Logged text is redacted whatever its case or script: the scans that find credentials are
skipped only for ASCII text that holds none of what they look for."""

import pytest

from dataplane.redaction import REDACTED, redact_text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("AUTHORIZATION=hunter2", "AUTHORIZATION="),
        ("x Bearer abc.def", "x Bearer "),
        ("key sk-abcdefgh", "key "),
        ('{"api_key": "hunter2"}', '{"api_key": "'),
        # Dotless i (U+0131): the scans' case folding reads it as `i`, so it is no way around.
        ("author\u0131zat\u0131on: hunter2", "author\u0131zat\u0131on: "),
    ],
)
def test_a_credential_is_redacted(text: str, kept: str) -> None:
    redacted = redact_text(text)
    assert redacted.startswith(kept) and REDACTED in redacted
    assert "hunter2" not in redacted and "abcdefgh" not in redacted and "abc.def" not in redacted


@pytest.mark.parametrize("text", ["/v1/threads/thread_abc", "0af7651916cd43dd8448eb211c80319c"])
def test_text_without_a_credential_is_logged_as_it_is(text: str) -> None:
    assert redact_text(text) == text
