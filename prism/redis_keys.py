"""Every Redis key Prism uses is named here, so the schema can be read in one place.

All keys start with `prism:`, and every kind of record has its own prefix, so that no id
can make one kind's name equal another's. Records are JSON strings; sorted sets with score 0 are
ordered lexicographically by member, which ListOrgs and ListKeys page through.

Everything one request's decision reads or counts belongs to one org, and its name carries the
org id as a hash tag (`prism:{acme}:...`), so it all lives in one Redis Cluster slot and one
Lua script can read and update it in a single round trip. Org ids cannot contain braces.
Only the indexes admin calls use (every org, every key, a secret's hash) are outside any org;
they are written in ordered steps after the records they point at, never in one transaction
with them (controlplane/accounts.py says how, and how a half-done write is repaired).
Renaming or re-tagging any key here is a rename of stored data: it needs a migration.
"""

PREFIX = "prism:"

# Sorted set of every org id.
ORGS = PREFIX + "orgs"
# Sorted set of every key id.
KEYS = PREFIX + "keys"
# Hash: key id -> the id of the org it belongs to (where its record lives).
KEY_ORGS = PREFIX + "key-orgs"


def key_by_hash(secret_sha256: str) -> str:
    """`<org id> <key id>` of the key whose secret has this SHA-256 (hex)."""
    return f"{PREFIX}keyhash:{secret_sha256}"


def _tagged(org_id: str) -> str:
    return f"{PREFIX}{{{org_id}}}:"


def org(org_id: str) -> str:
    """The org's JSON record."""
    return _tagged(org_id) + "org"


def org_keys(org_id: str) -> str:
    """Sorted set of the org's key ids."""
    return _tagged(org_id) + "keys"


def key(org_id: str, key_id: str) -> str:
    """The key's JSON record (with the secret's SHA-256, never the secret)."""
    return _tagged(org_id) + f"key:{key_id}"


def objects(org_id: str) -> str:
    """Hash: id -> kind (`assistant`, `thread`, ...) of every object the org created through
    the gateway and has not deleted."""
    return _tagged(org_id) + "objects"


def object_models(org_id: str) -> str:
    """Hash: assistant or run id -> the model it was last created or modified with (the name
    is from when only assistants' were kept)."""
    return _tagged(org_id) + "assistant-models"


def rate(org_id: str, owner: str, counter: str) -> str:
    """A rolling-window limit's state (its theoretical arrival time, in ms).

    owner is `org` or `key:<key id>`; counter is `requests` or `tokens`."""
    return _tagged(org_id) + f"rate:{owner}:{counter}"


def in_flight(org_id: str, owner: str) -> str:
    """Sorted set: request id -> when it started (ms), for a concurrency limit."""
    return _tagged(org_id) + f"in-flight:{owner}"


def run(org_id: str, run_id: str) -> str:
    """Hash of a run the gateway saw: `key` (the key that created it) and `thread` when its
    creation was recorded; `charge` (JSON: model, tokens, cost) once it has been charged,
    which happens once."""
    return _tagged(org_id) + f"run:{run_id}"


def pending_runs(org_id: str) -> str:
    """Sorted set: id of a run created through the gateway and not yet charged -> when its
    creation was recorded (ms). The sweeper charges those nobody looks at again."""
    return _tagged(org_id) + "pending-runs"


def sweep_claim(org_id: str, run_id: str) -> str:
    """Held (SET NX PX) by the one sweeper fetching a pending run."""
    return _tagged(org_id) + f"sweep-claim:{run_id}"


def storage_fee(org_id: str, day: str) -> str:
    """The org's vector-store storage of a UTC day (`2026-11-24`): a random token while one
    control plane holds the claim to charge it (SET NX PX), then `charged` once it has."""
    return _tagged(org_id) + f"storage-fee:{day}"


def record_applied(org_id: str, request_id: str, sequence: int) -> str:
    """Set (NX, for a grant's lifetime) once the objects and deletions of a request's Record
    of that sequence have been applied: a Record sent again applies them no more."""
    return _tagged(org_id) + f"record:{request_id}:{sequence}"


def step_charged(org_id: str, step_id: str) -> str:
    """Set once a run step's tool calls have been charged."""
    return _tagged(org_id) + f"step:{step_id}"


def code_session(org_id: str, thread_id: str) -> str:
    """Set for an hour when a thread's code_interpreter session is charged: calls within it
    are part of the same session."""
    return _tagged(org_id) + f"code-session:{thread_id}"


def usage(org_id: str, day: str) -> str:
    """Hash of the org's usage on a UTC day (`2026-11-24`): `<key id>\n<model>\n<counter>`
    -> count, counters being requests, input, cached, output, runs and cost (micro-USD)."""
    return _tagged(org_id) + f"usage:{day}"


def spend(org_id: str, owner: str, period: str) -> str:
    """Spend in micro-USD. period is `day:2026-11-24`, `month:2026-11` or `total`."""
    return _tagged(org_id) + f"spend:{owner}:{period}"


def reservation_expiries(org_id: str) -> str:
    """Sorted set of the org's budget reservations (a request's id, or its run's) by when
    each lapses (ms)."""
    return _tagged(org_id) + "reservation-expiries"


def reservation_records(org_id: str) -> str:
    """Hash: reservation id -> JSON {key, amount}: the key it counts for, micro-USD held."""
    return _tagged(org_id) + "reservations"


def reserved(org_id: str) -> str:
    """Hash: `org` and `key:<id>` -> the micro-USD their reservations hold now."""
    return _tagged(org_id) + "reserved"


def reservation_keys(org_id: str) -> list[str]:
    """The three keys lua/reservations.lua works on, in its order."""
    return [reservation_expiries(org_id), reservation_records(org_id), reserved(org_id)]


# The key control planes sign their grants with (controlplane/grants.py): 32 random bytes,
# base64, made by the first control plane to start (SET NX).
GRANT_KEY = PREFIX + "grant-key"

# Sorted set of every service token id.
SERVICE_TOKENS = PREFIX + "service-tokens"


def service_token(token_id: str) -> str:
    """A service token's JSON record (with the secret's SHA-256, never the secret)."""
    return f"{PREFIX}service-token:{token_id}"


def service_token_by_hash(secret_sha256: str) -> str:
    """The id of the unrevoked service token whose secret has this SHA-256 (hex)."""
    return f"{PREFIX}service-token-hash:{secret_sha256}"


# Hash: model -> JSON price (USD per million input, cached-input, output tokens) set by
# SetModelPrice over the built-in table.
MODEL_PRICES = PREFIX + "model-prices"
# JSON of the tools' fees set by SetToolFees over the built-in ones.
TOOL_FEES = PREFIX + "tool-fees"


def org_data(org_id: str) -> str:
    """A SCAN pattern matching every key of the org's slot."""
    return _tagged(org_id) + "*"


# The request log (a Stream; dataplane/log_writer.py writes it, controlplane/request_logs.py
# reads it) and its index by request id (a hash, and a list of its ids in order) share a
# hash tag that no org id can equal (org ids have no `_`), so one script writes all three in
# one Cluster slot and no org's data includes them.
_REQUEST_LOG_TAG = "{request_log}"
# Stream of request log entries: fields `org`, `key`, `status`, `route` (for filtering) and
# `entry` (the entry's JSON, prism.v1.RequestLog's JSON mapping).
REQUEST_LOG = PREFIX + "request-log:" + _REQUEST_LOG_TAG


# Hash: request id -> its entry's stream id, for GetRequestLog.
REQUEST_LOG_INDEX = PREFIX + "request-log-index:" + _REQUEST_LOG_TAG
# List of the indexed request ids, oldest first: how the index is trimmed with the stream,
# so it holds no more entries than the stream does.
REQUEST_LOG_ORDER = PREFIX + "request-log-order:" + _REQUEST_LOG_TAG


# The Assistants engine (engine/store.py). Objects are JSON strings; each listing is a sorted
# set of ids scored by ENGINE_SEQUENCE, so list order is creation order across processes.
# A thread and everything in it share the thread id as hash tag: one Cluster slot.
ENGINE_PREFIX = PREFIX + "engine:"
# Counter scoring every engine index entry.
ENGINE_SEQUENCE = ENGINE_PREFIX + "sequence"
# Sorted sets of every assistant id and every file id.
ENGINE_ASSISTANTS = ENGINE_PREFIX + "assistants"
ENGINE_FILES = ENGINE_PREFIX + "files"


def engine_object(object_id: str) -> str:
    """An assistant's or a file's JSON record (ids carry their kind's prefix)."""
    return f"{ENGINE_PREFIX}object:{object_id}"


def engine_files_by_purpose(purpose: str) -> str:
    """Sorted set of the ids of the files with that purpose."""
    return f"{ENGINE_PREFIX}files:{purpose}"


def _engine_thread(thread_id: str) -> str:
    return f"{ENGINE_PREFIX}{{{thread_id}}}:"


def engine_thread(thread_id: str) -> str:
    """The thread's JSON record."""
    return _engine_thread(thread_id) + "thread"


def engine_message(thread_id: str, message_id: str) -> str:
    """A message's JSON record."""
    return _engine_thread(thread_id) + f"message:{message_id}"


def engine_thread_messages(thread_id: str) -> str:
    """Sorted set of the thread's message ids."""
    return _engine_thread(thread_id) + "messages"


def engine_run_messages(thread_id: str, run_id: str) -> str:
    """Sorted set of the ids of the thread's messages a run created."""
    return _engine_thread(thread_id) + f"run-messages:{run_id}"


def engine_run(thread_id: str, run_id: str) -> str:
    """A run's JSON record (the spec's Run object)."""
    return _engine_thread(thread_id) + f"run:{run_id}"


def engine_run_state(thread_id: str, run_id: str) -> str:
    """What a run's worker keeps between turns and is not in the Run object: its tool turns,
    its usage so far and its additional_instructions."""
    return _engine_thread(thread_id) + f"run-state:{run_id}"


def engine_thread_runs(thread_id: str) -> str:
    """Sorted set of the thread's run ids."""
    return _engine_thread(thread_id) + "runs"


def engine_active_run(thread_id: str) -> str:
    """The id of the thread's one run that has not ended, if any."""
    return _engine_thread(thread_id) + "active-run"


def engine_step(thread_id: str, step_id: str) -> str:
    """A run step's JSON record."""
    return _engine_thread(thread_id) + f"step:{step_id}"


def engine_run_steps(thread_id: str, run_id: str) -> str:
    """Sorted set of a run's step ids."""
    return _engine_thread(thread_id) + f"run-steps:{run_id}"


# The run queue (engine/runs/queue.py): a list of `thread_id/run_id` entries waiting for a
# worker and a sorted set of the claimed ones scored by their lease's end (ms). One hash tag,
# so claiming (pop + lease) is one script on one Cluster slot.
ENGINE_RUN_QUEUE = ENGINE_PREFIX + "{run-queue}:waiting"
ENGINE_RUN_LEASES = ENGINE_PREFIX + "{run-queue}:leases"
# Hash of entry -> how many times a worker claimed it, to end a run that kills its workers.
ENGINE_RUN_CLAIMS = ENGINE_PREFIX + "{run-queue}:claims"
# List of wake-up tokens, one pushed with each entry queued: idle workers block on it
# (BLPOP) instead of polling the queue.
ENGINE_RUN_WAKE = ENGINE_PREFIX + "{run-queue}:wake"


def engine_run_events(thread_id: str, run_id: str) -> str:
    """Stream of the run's events (`event`, `data` JSON) as its workers produce them, which
    a streamed request relays; it expires an hour after the last event."""
    return _engine_thread(thread_id) + f"run-events:{run_id}"


# Vector stores (engine/vector_stores.py). A store and everything in it share the store id as
# hash tag, so a file's record and its chunks are written in one transaction on one slot.
# Sorted set of every vector store id.
ENGINE_VECTOR_STORES = ENGINE_PREFIX + "vector-stores"


def _engine_vector_store(vector_store_id: str) -> str:
    return f"{ENGINE_PREFIX}{{{vector_store_id}}}:"


def engine_vector_store(vector_store_id: str) -> str:
    """The vector store's JSON record (without file_counts and usage_bytes, which are
    counted from its files when read)."""
    return _engine_vector_store(vector_store_id) + "vector-store"


def engine_vector_store_files(vector_store_id: str) -> str:
    """Sorted set of the ids of the files in the vector store."""
    return _engine_vector_store(vector_store_id) + "files"


def engine_vector_store_file(vector_store_id: str, file_id: str) -> str:
    """A vector store file's JSON record (the spec's VectorStoreFileObject)."""
    return _engine_vector_store(vector_store_id) + f"file:{file_id}"


def engine_vector_store_chunks(vector_store_id: str, file_id: str) -> str:
    """JSON list of a completed file's chunks (engine.retrieval.chunking.Chunk.to_dict)."""
    return _engine_vector_store(vector_store_id) + f"chunks:{file_id}"


def engine_vector_store_indexing(vector_store_id: str, file_id: str) -> str:
    """Held, with an expiry, while an engine process indexes the file: a file still
    `in_progress` without it was left by a process that died, and is indexed again."""
    return _engine_vector_store(vector_store_id) + f"indexing:{file_id}"


def engine_vector_store_batch(vector_store_id: str, batch_id: str) -> str:
    """A file batch's JSON record (without file_counts, counted from its files)."""
    return _engine_vector_store(vector_store_id) + f"batch:{batch_id}"


def engine_vector_store_batch_files(vector_store_id: str, batch_id: str) -> str:
    """Sorted set of the ids of the files a batch added."""
    return _engine_vector_store(vector_store_id) + f"batch-files:{batch_id}"


def engine_vector_store_batches(vector_store_id: str) -> str:
    """Sorted set of the ids of the vector store's file batches."""
    return _engine_vector_store(vector_store_id) + "batches"
