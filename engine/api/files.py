"""Files: upload, list, retrieve, delete, download. Uploads are decoded as they stream in and
written to the data directory chunk by chunk, and downloads are read back the same way, so a
512 MB file never sits in memory."""

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import BinaryIO
from urllib.parse import quote

from quart import Blueprint, Response, request
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from ..errors import ApiError, body_too_large, file_not_found
from ..ids import FILE, new_id, now
from ..pagination import list_body, parse_page
from ..store import JSON, Store
from .fields import invalid_value, missing, store
from .handlers import handles

bp = Blueprint("files", __name__)

# OpenAI's limit on one file.
FILE_LIMIT = 512 * 1024 * 1024
# A multipart body is the file plus its small form fields and boundaries.
UPLOAD_BODY_LIMIT = FILE_LIMIT + 1024 * 1024
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
_DOWNLOAD_CHUNK = 1 << 20
# Form fields other than the file are short strings; anything longer is a broken client.
_MAX_FIELD_BYTES = 64 * 1024


class _MultipartUpload:
    """Feeds the body to werkzeug's incremental decoder: the `file` part goes straight to the
    sink, the other parts are kept as (small) form fields."""

    def __init__(self, boundary: bytes, sink: BinaryIO) -> None:
        self._decoder = MultipartDecoder(boundary, max_parts=32)
        self._file = sink
        self.fields: dict[str, bytearray] = {}
        self.filename: str | None = None
        self.size = 0
        self._target: bytearray | BinaryIO | None = None

    def feed(self, chunk: bytes | None) -> None:
        self._decoder.receive_data(chunk)
        while not isinstance(event := self._decoder.next_event(), NeedData | Epilogue):
            if isinstance(event, File):
                # Only the first `file` part is the upload; any other file part is ignored.
                is_upload = event.name == "file" and self.filename is None
                self._target = self._file if is_upload else None
                if is_upload:
                    self.filename = event.filename
            elif isinstance(event, Field):
                self._target = self.fields.setdefault(event.name, bytearray())
            elif isinstance(event, Data):
                self._write(event.data)

    def _write(self, data: bytes) -> None:
        if isinstance(self._target, bytearray):
            if len(self._target) + len(data) > _MAX_FIELD_BYTES:
                raise ApiError(400, "A form field is too long.")
            self._target.extend(data)
        elif self._target is not None:
            self.size += len(data)
            if self.size > FILE_LIMIT:
                raise ApiError(
                    413,
                    f"File is too large: the maximum size of a file is {FILE_LIMIT} bytes.",
                    param="file",
                    code="file_too_large",
                )
            # A blocking write of one network chunk: quicker than a thread hop, and it holds
            # the event loop no longer than the kernel's page cache takes.
            self._target.write(data)

    def field(self, name: str) -> str | None:
        value = self.fields.get(name)
        return None if value is None else value.decode("utf-8", errors="replace")


async def _receive_upload(state: Store) -> JSON:
    content_type = request.headers.get("Content-Type", "")
    mimetype, options = parse_options_header(content_type)
    if mimetype != "multipart/form-data" or not options.get("boundary"):
        raise ApiError(
            400,
            f"Invalid Content-Type header ({content_type or 'none'}), "
            "expected multipart/form-data.",
        )
    length = request.content_length
    if length is not None and length > UPLOAD_BODY_LIMIT:
        raise body_too_large(UPLOAD_BODY_LIMIT)
    # A large upload may take longer than Quart's default body timeout.
    request.body_timeout = None
    file_id = new_id(FILE)
    partial = state.data_dir / f"{file_id}.{secrets.token_hex(4)}.part"
    try:
        with partial.open("wb") as sink:
            upload = _MultipartUpload(options["boundary"].encode("latin-1"), sink)
            try:
                async for chunk in request.body:
                    upload.feed(chunk)
                upload.feed(None)
            except ValueError as error:  # werkzeug's word for a malformed multipart body
                raise ApiError(400, f"Could not parse the multipart form: {error}") from None
        purpose = upload.field("purpose")
        if upload.filename is None:
            raise missing("file")
        if purpose is None:
            raise missing("purpose")
        if purpose not in PURPOSES:
            raise invalid_value("purpose", purpose, PURPOSES)
        created = now()
        expires_at = _expires_at(upload, created)
        partial.rename(state.file_path(file_id))
    finally:
        partial.unlink(missing_ok=True)
    file: JSON = {
        "id": file_id,
        "object": "file",
        "bytes": upload.size,
        "created_at": created,
        "filename": upload.filename,
        "purpose": purpose,
        "status": "processed",
    }
    if expires_at is not None:
        file["expires_at"] = expires_at
    return file


def _expires_at(upload: _MultipartUpload, created: int) -> int | None:
    """The SDK sends `expires_after` as the form fields expires_after[anchor|seconds]."""
    seconds = upload.field("expires_after[seconds]")
    if seconds is None:
        return None
    if not seconds.isdigit() or not 3600 <= int(seconds) <= 2592000:
        raise ApiError(
            400,
            "Invalid 'expires_after.seconds': integer must be between 3600 and 2592000, "
            f"but got '{seconds}'.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    return created + int(seconds)


async def _file(file_id: str) -> JSON:
    file = await store().get_file(file_id)
    if file is None:
        raise file_not_found(file_id, "id")
    return file


@handles(bp, "createFile")
async def create() -> JSON:
    state = store()
    file = await _receive_upload(state)
    try:
        await state.add_file(file)
    except BaseException:
        # No record, no bytes: a failed write leaves no orphan behind.
        state.file_path(file["id"]).unlink(missing_ok=True)
        raise
    return file


@handles(bp, "listFiles")
async def list_files() -> JSON:
    page = parse_page(request.args, default_limit=10000, max_limit=10000)
    return list_body(*await store().list_files(page, request.args.get("purpose") or None))


@handles(bp, "retrieveFile")
async def retrieve(file_id: str) -> JSON:
    return await _file(file_id)


@handles(bp, "deleteFile")
async def delete(file_id: str) -> JSON:
    if not await store().delete_file(file_id):
        raise file_not_found(file_id, "id")
    return {"id": file_id, "object": "file", "deleted": True}


@handles(bp, "downloadFile")
async def content(file_id: str) -> Response:
    file = await _file(file_id)
    # Opened now, so a file deleted while the response starts still downloads whole.
    source = store().file_path(file_id).open("rb")

    async def chunks() -> AsyncIterator[bytes]:
        with source:
            while chunk := await asyncio.to_thread(source.read, _DOWNLOAD_CHUNK):
                yield chunk

    response = Response(chunks(), mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(file["bytes"])
    # Percent-encoded: a client's filename may hold quotes or line breaks.
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(file['filename'])}"
    )
    response.timeout = None  # a large download may outlast Quart's response timeout
    return response
