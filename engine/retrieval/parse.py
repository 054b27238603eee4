"""Turn a file's bytes into the text that gets chunked and indexed.

The type comes from the filename's extension when it is one we know, else from the
content type (uploads often arrive as application/octet-stream, so the name is the more
reliable of the two). Plain text and Markdown are kept as written (Markdown's markup is
meaningful text: headings and list items read fine as they are), JSON becomes its
pretty-printed document, HTML its visible text, PDF the text of its pages.
"""

import io
import json
import logging
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import PurePosixPath

import pypdf
from pypdf.errors import PyPdfError

from engine.retrieval.errors import InvalidFile, UnsupportedFile

# Plain text: prose and the source formats file_search accepts as text.
_TEXT_EXTENSIONS = frozenset(
    {
        ".txt", ".text", ".log", ".csv", ".c", ".cc", ".cpp", ".cs", ".css", ".go", ".h",
        ".java", ".js", ".php", ".py", ".rb", ".rs", ".sh", ".tex", ".ts", ".xml", ".yaml",
        ".yml",
    }
)  # fmt: skip
_KINDS_BY_EXTENSION = {
    **dict.fromkeys(_TEXT_EXTENSIONS, "text"),
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
_KINDS_BY_CONTENT_TYPE = {
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/json": "json",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
}

# pypdf reports recoverable damage through logging; the outcome is what matters here.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def file_kind(filename: str, content_type: str | None = None) -> str:
    """The parser to use: "text", "markdown", "json", "html" or "pdf"."""
    extension = PurePosixPath(filename).suffix.lower()
    if extension in _KINDS_BY_EXTENSION:
        return _KINDS_BY_EXTENSION[extension]
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type in _KINDS_BY_CONTENT_TYPE:
        return _KINDS_BY_CONTENT_TYPE[media_type]
    if media_type.startswith("text/"):
        return "text"
    described = f"{filename!r}" + (f" ({media_type})" if media_type else "")
    raise UnsupportedFile(
        f"File type of {described} is not supported for retrieval: use plain text, "
        "Markdown, JSON, HTML or PDF."
    )


def parse(data: bytes, filename: str, content_type: str | None = None) -> str:
    """The file's text. Raises UnsupportedFile for a type we do not read and InvalidFile
    for bytes that are corrupt, undecodable or hold no text."""
    kind = file_kind(filename, content_type)
    text = _PARSERS[kind](data)
    if not text.strip():
        raise InvalidFile(f"File {filename!r} contains no text to index.")
    return text


def _decode(data: bytes) -> str:
    # utf-8-sig drops a byte-order mark that would otherwise lead the first chunk.
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        raise InvalidFile(f"File is not valid {encoding.removesuffix('-sig')} text.") from error
    if "\x00" in text:
        raise InvalidFile("File holds binary data, not text.")
    return text


def _parse_text(data: bytes) -> str:
    return _decode(data)


def _parse_json(data: bytes) -> str:
    try:
        document = json.loads(_decode(data))
    except json.JSONDecodeError as error:
        raise InvalidFile(f"File is not valid JSON: {error}.") from error
    return json.dumps(document, indent=2, ensure_ascii=False)


class _VisibleText(HTMLParser):
    """Collects the text a browser shows: not scripts, styles or templates; block elements
    and line breaks end a line so words of adjacent blocks do not run together."""

    _HIDDEN = frozenset({"script", "style", "template", "noscript"})
    _BLOCKS = frozenset(
        {
            "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
            "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
            "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td",
            "th", "title", "tr", "ul",
        }
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._hidden_depth = 0
        self._parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
        elif tag in self._BLOCKS:
            self._parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCKS:
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in self._BLOCKS:
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self._parts.append(data)

    def text(self) -> str:
        lines = (re.sub(r"\s+", " ", line).strip() for line in "".join(self._parts).split("\n"))
        return "\n".join(line for line in lines if line)


def _parse_html(data: bytes) -> str:
    parser = _VisibleText()
    parser.feed(_decode(data))
    parser.close()
    return parser.text()


def _parse_pdf(data: bytes) -> str:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InvalidFile("PDF is encrypted with a password.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except InvalidFile:
        raise
    # A damaged PDF surfaces from deep inside pypdf as its own errors or as whatever the
    # broken structure trips over; all of them mean the same thing to the uploader.
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        raise InvalidFile(f"PDF could not be read: {error}.") from error
    return "\n\n".join(page.strip() for page in pages if page.strip())


_PARSERS: dict[str, Callable[[bytes], str]] = {
    "text": _parse_text,
    "markdown": _parse_text,
    "json": _parse_json,
    "html": _parse_html,
    "pdf": _parse_pdf,
}
