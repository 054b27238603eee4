"""Every Redis key Prism uses is named here, so the schema can be read in one place.

All keys start with `prism:`, and every kind of record has its own prefix, so that no id
can make one kind's name equal another's. Records are JSON strings; sorted sets with score 0 are
ordered lexicographically by member, which ListOrgs and ListKeys page through.
"""

PREFIX = "prism:"

# Sorted set of every org id.
ORGS = PREFIX + "orgs"
# Sorted set of every key id.
KEYS = PREFIX + "keys"


def org(org_id: str) -> str:
    """The org's JSON record."""
    return f"{PREFIX}org:{org_id}"


def org_keys(org_id: str) -> str:
    """Sorted set of the org's key ids.

    Its own prefix, not `org:<id>:keys`: no org id, however odd, can then name another
    org's index."""
    return f"{PREFIX}org-keys:{org_id}"


def key(key_id: str) -> str:
    """The key's JSON record (with the secret's SHA-256, never the secret)."""
    return f"{PREFIX}key:{key_id}"


def key_by_hash(secret_sha256: str) -> str:
    """The id of the key whose secret has this SHA-256 (hex)."""
    return f"{PREFIX}keyhash:{secret_sha256}"
