"""Every Redis key Prism uses is named here, so the schema can be read in one place.

All keys start with `prism:`, and every kind of record has its own prefix, so that no id
can make one kind's name equal another's. Records are JSON strings; sorted sets with score 0 are
ordered lexicographically by member, which ListOrgs and ListKeys page through.

Everything one request's decision reads or counts belongs to one org, and its name carries the
org id as a hash tag (`prism:{acme}:...`), so it all lives in one Redis Cluster slot and one
Lua script can read and update it in a single round trip. Org ids cannot contain braces.
Only the indexes admin calls use (every org, every key, a secret's hash) are outside any org.
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


def assistant_models(org_id: str) -> str:
    """Hash: assistant id -> the model it was last created or modified with."""
    return _tagged(org_id) + "assistant-models"


def rate(org_id: str, owner: str, counter: str) -> str:
    """A rolling-window limit's state (its theoretical arrival time, in ms).

    owner is `org` or `key:<key id>`; counter is `requests` or `tokens`."""
    return _tagged(org_id) + f"rate:{owner}:{counter}"


def in_flight(org_id: str, owner: str) -> str:
    """Sorted set: request id -> when it started (ms), for a concurrency limit."""
    return _tagged(org_id) + f"in-flight:{owner}"


def run_tokens_counted(org_id: str, run_id: str) -> str:
    """Set once a run's tokens have counted towards tokens-per-minute limits."""
    return _tagged(org_id) + f"run-tokens:{run_id}"


def spend(org_id: str, owner: str, period: str) -> str:
    """Spend in micro-USD. period is `day:2026-11-24`, `month:2026-11` or `total`."""
    return _tagged(org_id) + f"spend:{owner}:{period}"


def org_data(org_id: str) -> str:
    """A SCAN pattern matching every key of the org's slot."""
    return _tagged(org_id) + "*"
