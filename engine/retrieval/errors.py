"""The domain errors of retrieval, shaped for the API's two ways of reporting them."""


class ParamError(ValueError):
    """A request parameter is out of the spec's range: the HTTP layer answers 400 with
    `param` set to the dotted path of the offending field."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


class FileError(Exception):
    """A file cannot be turned into text. `code` is one of the spec's
    VectorStoreFileObject.last_error codes, so the vector-store file goes `failed` with
    `last_error = {"code": code, "message": message}`."""

    code: str = "invalid_file"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def last_error(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class UnsupportedFile(FileError):
    """The file's type is not one retrieval reads."""

    code = "unsupported_file"


class InvalidFile(FileError):
    """The file claims a supported type but its bytes are corrupt, undecodable or hold no
    text."""

    code = "invalid_file"
