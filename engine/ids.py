"""Object ids as OpenAI makes them: the kind's prefix and 24 random base62 characters."""

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits

ASSISTANT = "asst_"
THREAD = "thread_"
MESSAGE = "msg_"
RUN = "run_"
STEP = "step_"
FILE = "file-"
VECTOR_STORE = "vs_"
FILE_BATCH = "vsfb_"


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def now() -> int:
    """created_at and the other timestamps: Unix seconds."""
    return int(time.time())
