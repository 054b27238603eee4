"""prism.v1.Admin over the real socket with the generated stubs: every RPC's result, every
failure's status code and message, pagination, update masks, key life cycle (revoke, rotate,
delete with the org), where secrets may and may not appear, and two replicas sharing Redis."""

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from prism import redis_client, redis_keys
from prism.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2
from tests.conftest import (
    DATAPLANE_TOKEN,
    AdminClient,
    AuthorizerClient,
    Check,
    ControlPlane,
    assert_one_clear_line,
    start_and_fail,
)
from tools import stack

# Also on a Redis Cluster (tests/conftest.py).
pytestmark = pytest.mark.redis_cluster

KEY_ID = re.compile(r"key_[A-Za-z0-9]{24}")
SECRET = re.compile(r"sk-prism-[A-Za-z0-9]{48}")
GENERATED_ORG_ID = re.compile(r"org-[a-z0-9]{16}")
ORG_ID_RULE = re.compile(r"[a-z][a-z0-9-]{2,62}")


# Helpers


def unique_org_id(label: str = "t") -> str:
    return f"{label}-{secrets.token_hex(5)}"


def fails(code: grpc.StatusCode, call: Callable[[], Any], *fragments: str) -> str:
    """Runs call, expects a gRPC error with this code whose message holds every fragment."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    assert error.code() == code, f"{error.code()}: {error.details()}"
    message = error.details()
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def assert_recent(stamp: Timestamp) -> None:
    """A timestamp the server stamped during this test (the wall clocks are the same host's)."""
    moment = stamp.ToDatetime(tzinfo=UTC)
    assert abs(moment - datetime.now(UTC)) < timedelta(minutes=1), moment


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def redis_dump(redis_url: str, skipped_prefix: str | None = None) -> str:
    """Every key name and every value in Redis, but those of keys under `skipped_prefix`,
    as one text to search."""
    client = redis_client.sync_client(redis_url, decode_responses=True)
    parts: list[str] = []
    with client:
        for name in client.scan_iter(count=1000):
            if skipped_prefix is not None and name.startswith(skipped_prefix):
                continue
            parts.append(name)
            kind = client.type(name)
            if kind == "string":
                parts.append(client.get(name) or "")
            elif kind == "zset":
                parts.extend(client.zrange(name, 0, -1))
            elif kind == "hash":
                parts.extend(f"{k}={v}" for k, v in client.hgetall(name).items())
            elif kind == "set":
                parts.extend(client.smembers(name))
            elif kind == "list":
                parts.extend(client.lrange(name, 0, -1))
            elif kind == "stream":
                parts.extend(f"{id_} {fields}" for id_, fields in client.xrange(name))
            else:
                pytest.fail(f"Redis key {name!r} has an unexpected type {kind!r}")
    return "\n".join(parts)


# Fixtures


@pytest.fixture
def org(admin: AdminClient) -> admin_pb2.Org:
    return admin.CreateOrg(
        admin_pb2.CreateOrgRequest(
            org_id=unique_org_id("org"), org=admin_pb2.Org(display_name="Fixture org")
        )
    )


def create_key(admin: AdminClient, org_id: str, **fields: Any) -> admin_pb2.IssuedKey:
    return admin.CreateKey(admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org_id, **fields)))


def assert_unknown_key(response: authorizer_pb2.CheckResponse) -> None:
    assert not response.allowed
    assert response.denial.http_status == 401
    assert response.denial.code == "invalid_api_key"
    assert "Incorrect API key provided" in response.denial.message
    assert not response.HasField("principal")


def assert_revoked(response: authorizer_pb2.CheckResponse) -> None:
    assert not response.allowed
    assert response.denial.http_status == 401
    assert response.denial.code == "invalid_api_key"
    assert "revoked" in response.denial.message


# Orgs


def test_create_org_with_a_chosen_id_returns_every_field(admin: AdminClient) -> None:
    org_id = unique_org_id("acme")
    policy = admin_pb2.Policy(
        allowed_models=["gpt-4o*"], allowed_ip_ranges=["10.0.0.0/8", "2001:db8::/32"]
    )

    created = admin.CreateOrg(
        admin_pb2.CreateOrgRequest(
            org_id=org_id,
            org=admin_pb2.Org(display_name="Acme", metadata={"team": "ml"}, policy=policy),
        )
    )

    assert created.id == org_id
    assert created.display_name == "Acme"
    assert dict(created.metadata) == {"team": "ml"}
    assert created.policy == policy
    assert_recent(created.create_time)
    assert created.update_time == created.create_time
    assert admin.GetOrg(admin_pb2.GetOrgRequest(id=org_id)) == created


def test_create_org_without_an_id_generates_one(admin: AdminClient) -> None:
    first = admin.CreateOrg(admin_pb2.CreateOrgRequest(org=admin_pb2.Org(display_name="A")))
    second = admin.CreateOrg(admin_pb2.CreateOrgRequest(org=admin_pb2.Org(display_name="B")))

    for created in (first, second):
        assert GENERATED_ORG_ID.fullmatch(created.id), created.id
        assert ORG_ID_RULE.fullmatch(created.id), created.id
        assert admin.GetOrg(admin_pb2.GetOrgRequest(id=created.id)) == created
    assert first.id != second.id


@pytest.mark.parametrize(
    "org_id", ["Acme", "ab", "-acme", "9acme", "acme_corp", "acme corp", "a" * 64]
)
def test_create_org_rejects_a_bad_org_id(admin: AdminClient, org_id: str) -> None:
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.CreateOrg(admin_pb2.CreateOrgRequest(org_id=org_id)),
        repr(org_id),
        "3 to 63 lowercase letters, digits or dashes",
    )
    fails(grpc.StatusCode.NOT_FOUND, lambda: admin.GetOrg(admin_pb2.GetOrgRequest(id=org_id)))


def test_create_org_accepts_the_longest_allowed_id(admin: AdminClient) -> None:
    org_id = "z" + secrets.token_hex(31)[:62]
    assert len(org_id) == 63

    assert admin.CreateOrg(admin_pb2.CreateOrgRequest(org_id=org_id)).id == org_id


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "not-a-cidr", "300.1.2.3/8", "2001:db8::/129"])
def test_create_org_rejects_a_bad_cidr(admin: AdminClient, cidr: str) -> None:
    org_id = unique_org_id()
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.CreateOrg(
            admin_pb2.CreateOrgRequest(
                org_id=org_id,
                org=admin_pb2.Org(policy=admin_pb2.Policy(allowed_ip_ranges=["10.0.0.0/8", cidr])),
            )
        ),
        "policy.allowed_ip_ranges",
        repr(cidr),
        "CIDR",
    )
    fails(grpc.StatusCode.NOT_FOUND, lambda: admin.GetOrg(admin_pb2.GetOrgRequest(id=org_id)))


@pytest.mark.parametrize("glob", ["", "   "])
def test_create_org_rejects_an_empty_model_glob(admin: AdminClient, glob: str) -> None:
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.CreateOrg(
            admin_pb2.CreateOrgRequest(
                org=admin_pb2.Org(policy=admin_pb2.Policy(allowed_models=["gpt-4o", glob]))
            )
        ),
        "policy.allowed_models",
        "empty",
    )


def test_create_org_with_a_taken_id_is_already_exists(
    admin: AdminClient, org: admin_pb2.Org
) -> None:
    fails(
        grpc.StatusCode.ALREADY_EXISTS,
        lambda: admin.CreateOrg(
            admin_pb2.CreateOrgRequest(org_id=org.id, org=admin_pb2.Org(display_name="Impostor"))
        ),
        f"'{org.id}' already exists",
        "org_id",
    )
    assert admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id)) == org


def test_create_org_refuses_an_id_set_in_the_org_message(admin: AdminClient) -> None:
    """org.id is output only; silently generating another id would surprise the operator."""
    org_id = unique_org_id()
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.CreateOrg(admin_pb2.CreateOrgRequest(org=admin_pb2.Org(id=org_id))),
        "org.id is output only",
        "org_id",
    )
    fails(grpc.StatusCode.NOT_FOUND, lambda: admin.GetOrg(admin_pb2.GetOrgRequest(id=org_id)))
    same = admin.CreateOrg(admin_pb2.CreateOrgRequest(org_id=org_id, org=admin_pb2.Org(id=org_id)))
    assert same.id == org_id


def test_get_org_failures(admin: AdminClient) -> None:
    fails(
        grpc.StatusCode.NOT_FOUND,
        lambda: admin.GetOrg(admin_pb2.GetOrgRequest(id="no-such-org-here")),
        "org 'no-such-org-here' not found",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.GetOrg(admin_pb2.GetOrgRequest()),
        "id is required",
    )


def test_update_org_with_a_sub_field_path_changes_only_that_field(admin: AdminClient) -> None:
    org_id = unique_org_id()
    before = admin.CreateOrg(
        admin_pb2.CreateOrgRequest(
            org_id=org_id,
            org=admin_pb2.Org(
                display_name="Before",
                metadata={"team": "ml"},
                policy=admin_pb2.Policy(
                    allowed_models=["gpt-4o"], allowed_ip_ranges=["10.0.0.0/8"]
                ),
            ),
        )
    )

    after = admin.UpdateOrg(
        admin_pb2.UpdateOrgRequest(
            org=admin_pb2.Org(
                id=org_id,
                display_name="Ignored",
                metadata={"ignored": "yes"},
                policy=admin_pb2.Policy(
                    allowed_models=["gpt-4o-mini", "o1*"], allowed_ip_ranges=["192.0.2.0/24"]
                ),
            ),
            update_mask=FieldMask(paths=["policy.allowed_models"]),
        )
    )

    assert list(after.policy.allowed_models) == ["gpt-4o-mini", "o1*"]
    assert list(after.policy.allowed_ip_ranges) == ["10.0.0.0/8"]
    assert after.display_name == "Before"
    assert dict(after.metadata) == {"team": "ml"}
    assert after.create_time == before.create_time
    assert after.update_time.ToDatetime() > before.update_time.ToDatetime()
    assert admin.GetOrg(admin_pb2.GetOrgRequest(id=org_id)) == after


def test_update_org_ignores_fields_outside_the_mask_even_when_invalid(
    admin: AdminClient, org: admin_pb2.Org
) -> None:
    after = admin.UpdateOrg(
        admin_pb2.UpdateOrgRequest(
            org=admin_pb2.Org(
                id=org.id,
                policy=admin_pb2.Policy(allowed_models=["o1*"], allowed_ip_ranges=["nonsense"]),
            ),
            update_mask=FieldMask(paths=["policy.allowed_models"]),
        )
    )

    assert after.policy == admin_pb2.Policy(allowed_models=["o1*"])


def test_update_org_with_top_level_paths(admin: AdminClient) -> None:
    org_id = unique_org_id()
    policy = admin_pb2.Policy(allowed_models=["gpt-4o"])
    admin.CreateOrg(
        admin_pb2.CreateOrgRequest(
            org_id=org_id,
            org=admin_pb2.Org(display_name="Before", metadata={"a": "1"}, policy=policy),
        )
    )

    after = admin.UpdateOrg(
        admin_pb2.UpdateOrgRequest(
            org=admin_pb2.Org(id=org_id, display_name="After", metadata={"b": "2"}),
            update_mask=FieldMask(paths=["display_name", "metadata"]),
        )
    )

    assert after.display_name == "After"
    assert dict(after.metadata) == {"b": "2"}
    assert after.policy == policy


def test_update_org_with_an_empty_mask_replaces_every_updatable_field(
    admin: AdminClient,
) -> None:
    org_id = unique_org_id()
    before = admin.CreateOrg(
        admin_pb2.CreateOrgRequest(
            org_id=org_id,
            org=admin_pb2.Org(
                display_name="Before",
                metadata={"team": "ml"},
                policy=admin_pb2.Policy(
                    allowed_models=["gpt-4o"], allowed_ip_ranges=["10.0.0.0/8"]
                ),
            ),
        )
    )

    after = admin.UpdateOrg(
        admin_pb2.UpdateOrgRequest(org=admin_pb2.Org(id=org_id, display_name="After"))
    )

    assert after.id == org_id
    assert after.display_name == "After"
    assert dict(after.metadata) == {}
    assert after.policy == admin_pb2.Policy()
    assert after.create_time == before.create_time
    assert admin.GetOrg(admin_pb2.GetOrgRequest(id=org_id)) == after


@pytest.mark.parametrize("path", ["id", "create_time", "name", "expire_time", "policy.foo"])
def test_update_org_rejects_an_unknown_mask_path(
    admin: AdminClient, org: admin_pb2.Org, path: str
) -> None:
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.UpdateOrg(
            admin_pb2.UpdateOrgRequest(
                org=admin_pb2.Org(id=org.id, display_name="Changed"),
                update_mask=FieldMask(paths=["display_name", path]),
            )
        ),
        f"cannot update {path}",
        "updatable: display_name, metadata, policy",
    )
    assert admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id)) == org


def test_update_org_failures(admin: AdminClient, org: admin_pb2.Org) -> None:
    fails(
        grpc.StatusCode.NOT_FOUND,
        lambda: admin.UpdateOrg(
            admin_pb2.UpdateOrgRequest(org=admin_pb2.Org(id="no-such-org-here"))
        ),
        "org 'no-such-org-here' not found",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.UpdateOrg(admin_pb2.UpdateOrgRequest(org=admin_pb2.Org(display_name="x"))),
        "org.id is required",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.UpdateOrg(
            admin_pb2.UpdateOrgRequest(
                org=admin_pb2.Org(
                    id=org.id, policy=admin_pb2.Policy(allowed_ip_ranges=["10.0.0.0/99"])
                ),
                update_mask=FieldMask(paths=["policy.allowed_ip_ranges"]),
            )
        ),
        "'10.0.0.0/99' is not an IPv4 or IPv6 CIDR",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.UpdateOrg(
            admin_pb2.UpdateOrgRequest(
                org=admin_pb2.Org(id=org.id, policy=admin_pb2.Policy(allowed_models=[""])),
                update_mask=FieldMask(paths=["policy"]),
            )
        ),
        "policy.allowed_models",
    )
    assert admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id)) == org


def test_delete_org_without_keys(admin: AdminClient, org: admin_pb2.Org) -> None:
    admin.DeleteOrg(admin_pb2.DeleteOrgRequest(id=org.id))

    fails(grpc.StatusCode.NOT_FOUND, lambda: admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id)))
    listed = admin.ListOrgs(admin_pb2.ListOrgsRequest(page_size=1000))
    assert org.id not in [o.id for o in listed.orgs]
    fails(
        grpc.StatusCode.NOT_FOUND,
        lambda: admin.DeleteOrg(admin_pb2.DeleteOrgRequest(id=org.id)),
        f"org '{org.id}' not found",
    )
    # The id is free again.
    assert admin.CreateOrg(admin_pb2.CreateOrgRequest(org_id=org.id)).id == org.id


def test_delete_org_requires_an_id(admin: AdminClient) -> None:
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.DeleteOrg(admin_pb2.DeleteOrgRequest(force=True)),
        "id is required",
    )


def test_delete_org_with_keys_needs_force(
    admin: AdminClient, org: admin_pb2.Org, check: Check
) -> None:
    issued = [create_key(admin, org.id, name=f"k{i}") for i in range(2)]
    # Revoked keys still belong to the org.
    admin.RevokeKey(admin_pb2.RevokeKeyRequest(id=issued[1].key.id))

    fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: admin.DeleteOrg(admin_pb2.DeleteOrgRequest(id=org.id)),
        f"org '{org.id}' still has 2 keys",
        "force",
    )

    assert admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id)) == org
    assert admin.GetKey(admin_pb2.GetKeyRequest(id=issued[0].key.id)) == issued[0].key
    assert check(issued[0].secret).allowed


def test_delete_org_with_force_removes_its_keys(
    admin: AdminClient, org: admin_pb2.Org, check: Check, redis_url: str
) -> None:
    issued = [create_key(admin, org.id, name=f"k{i}") for i in range(3)]
    rotated = admin.RotateKey(admin_pb2.RotateKeyRequest(id=issued[2].key.id))
    secrets_issued = [i.secret for i in issued[:2]] + [rotated.secret]
    assert all(check(secret).allowed for secret in secrets_issued)

    admin.DeleteOrg(admin_pb2.DeleteOrgRequest(id=org.id, force=True))

    fails(grpc.StatusCode.NOT_FOUND, lambda: admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id)))
    for each in issued:
        fails(
            grpc.StatusCode.NOT_FOUND,
            lambda each=each: admin.GetKey(admin_pb2.GetKeyRequest(id=each.key.id)),
            f"key '{each.key.id}' not found",
        )
    for secret in secrets_issued:
        assert_unknown_key(check(secret))
    everything = admin.ListKeys(admin_pb2.ListKeysRequest(page_size=1000))
    assert not {k.id for k in everything.keys} & {i.key.id for i in issued}
    # Nothing of the org is left behind in Redis: no records, index entries or hashes.
    dump = redis_dump(redis_url)
    for leftover in [org.id, *(i.key.id for i in issued), *map(sha256, secrets_issued)]:
        assert leftover not in dump


# Keys


def test_create_key_returns_the_key_and_its_secret(admin: AdminClient, org: admin_pb2.Org) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    policy = admin_pb2.Policy(allowed_models=["gpt-4o*"], allowed_ip_ranges=["10.0.0.0/8"])

    issued = create_key(
        admin,
        org.id,
        name="ci key",
        expire_time=timestamp(expires),
        metadata={"owner": "ci"},
        policy=policy,
    )

    key, secret = issued.key, issued.secret
    assert KEY_ID.fullmatch(key.id), key.id
    assert SECRET.fullmatch(secret), secret
    assert key.display_prefix == secret[:15]
    assert key.org_id == org.id
    assert key.name == "ci key"
    assert dict(key.metadata) == {"owner": "ci"}
    assert key.policy == policy
    assert key.expire_time.ToDatetime(tzinfo=UTC) == expires
    assert not key.revoked
    assert not key.HasField("revoke_time")
    assert_recent(key.create_time)
    assert key.update_time == key.create_time
    assert admin.GetKey(admin_pb2.GetKeyRequest(id=key.id)) == key


def test_keys_get_distinct_ids_and_secrets_and_never_expire_by_default(
    admin: AdminClient, org: admin_pb2.Org
) -> None:
    issued = [create_key(admin, org.id) for _ in range(3)]

    assert len({i.key.id for i in issued}) == 3
    assert len({i.secret for i in issued}) == 3
    for each in issued:
        assert not each.key.HasField("expire_time")
        assert each.key.policy == admin_pb2.Policy()


def test_create_key_failures(admin: AdminClient, org: admin_pb2.Org) -> None:
    past = timestamp(datetime.now(UTC) - timedelta(seconds=5))
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.CreateKey(admin_pb2.CreateKeyRequest(key=admin_pb2.Key(name="x"))),
        "key.org_id is required",
    )
    fails(
        grpc.StatusCode.NOT_FOUND,
        lambda: create_key(admin, "no-such-org-here"),
        "org 'no-such-org-here' not found",
        "create it first",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: create_key(admin, org.id, expire_time=past),
        "expire_time",
        past.ToDatetime().strftime("%Y-%m-%dT%H:%M:%S"),
        "leave it unset",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: create_key(
            admin, org.id, policy=admin_pb2.Policy(allowed_ip_ranges=["10.0.0.0/8", "bogus"])
        ),
        "policy.allowed_ip_ranges",
        "'bogus'",
        "CIDR",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: create_key(admin, org.id, policy=admin_pb2.Policy(allowed_models=[""])),
        "policy.allowed_models",
        "empty",
    )
    listed = admin.ListKeys(admin_pb2.ListKeysRequest(org_id=org.id))
    assert list(listed.keys) == []


@pytest.mark.parametrize(
    "expire_time",
    [
        Timestamp(seconds=253402300800),  # 10000-01-01, past the last valid Timestamp
        Timestamp(seconds=2**62),
        Timestamp(seconds=1900000000, nanos=2_000_000_000),
    ],
    ids=["year-10000", "huge", "bad-nanos"],
)
def test_an_invalid_expire_time_timestamp_is_invalid_argument(
    admin: AdminClient, org: admin_pb2.Org, expire_time: Timestamp
) -> None:
    issued = create_key(admin, org.id)

    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: create_key(admin, org.id, expire_time=expire_time),
        "expire_time",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.UpdateKey(
            admin_pb2.UpdateKeyRequest(
                key=admin_pb2.Key(id=issued.key.id, expire_time=expire_time),
                update_mask=FieldMask(paths=["expire_time"]),
            )
        ),
        "expire_time",
    )
    listed = admin.ListKeys(admin_pb2.ListKeysRequest(org_id=org.id))
    assert list(listed.keys) == [issued.key]


def test_get_key_failures(admin: AdminClient) -> None:
    fails(
        grpc.StatusCode.NOT_FOUND,
        lambda: admin.GetKey(admin_pb2.GetKeyRequest(id="key_doesnotexist000000000")),
        "key 'key_doesnotexist000000000' not found",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.GetKey(admin_pb2.GetKeyRequest()),
        "id is required",
    )


def test_update_key_with_a_sub_field_path_changes_only_that_field(
    admin: AdminClient, org: admin_pb2.Org, check: Check
) -> None:
    expires = timestamp(datetime.now(UTC).replace(microsecond=0) + timedelta(days=1))
    before = create_key(
        admin,
        org.id,
        name="before",
        expire_time=expires,
        metadata={"a": "1"},
        policy=admin_pb2.Policy(allowed_ip_ranges=["127.0.0.0/8"]),
    )

    after = admin.UpdateKey(
        admin_pb2.UpdateKeyRequest(
            key=admin_pb2.Key(
                id=before.key.id,
                name="ignored",
                metadata={"ignored": "yes"},
                policy=admin_pb2.Policy(
                    allowed_models=["gpt-4o*"], allowed_ip_ranges=["192.0.2.0/24"]
                ),
            ),
            update_mask=FieldMask(paths=["policy.allowed_models"]),
        )
    )

    assert list(after.policy.allowed_models) == ["gpt-4o*"]
    assert list(after.policy.allowed_ip_ranges) == ["127.0.0.0/8"]
    assert after.name == "before"
    assert dict(after.metadata) == {"a": "1"}
    assert after.expire_time == expires
    assert after.display_prefix == before.key.display_prefix
    assert after.create_time == before.key.create_time
    assert after.update_time.ToDatetime() > before.key.update_time.ToDatetime()
    assert admin.GetKey(admin_pb2.GetKeyRequest(id=before.key.id)) == after
    # The secret is unchanged and still works, within the key's address range.
    assert check(before.secret, client_ip="127.0.0.1").allowed


def test_update_key_with_an_empty_mask_replaces_every_updatable_field(
    admin: AdminClient, org: admin_pb2.Org
) -> None:
    before = create_key(
        admin,
        org.id,
        name="before",
        expire_time=timestamp(datetime.now(UTC) + timedelta(days=1)),
        metadata={"a": "1"},
        policy=admin_pb2.Policy(allowed_models=["gpt-4o"], allowed_ip_ranges=["10.0.0.0/8"]),
    )

    after = admin.UpdateKey(
        admin_pb2.UpdateKeyRequest(key=admin_pb2.Key(id=before.key.id, name="after"))
    )

    assert after.id == before.key.id
    assert after.org_id == org.id
    assert after.name == "after"
    assert dict(after.metadata) == {}
    assert after.policy == admin_pb2.Policy()
    assert not after.HasField("expire_time")
    assert after.display_prefix == before.key.display_prefix
    assert admin.GetKey(admin_pb2.GetKeyRequest(id=before.key.id)) == after


def test_update_key_policy_takes_effect_on_the_next_check(
    admin: AdminClient, org: admin_pb2.Org, check: Check
) -> None:
    issued = create_key(admin, org.id)
    assert check(issued.secret).allowed

    admin.UpdateKey(
        admin_pb2.UpdateKeyRequest(
            key=admin_pb2.Key(
                id=issued.key.id, policy=admin_pb2.Policy(allowed_ip_ranges=["192.0.2.0/24"])
            ),
            update_mask=FieldMask(paths=["policy.allowed_ip_ranges"]),
        )
    )

    denied = check(issued.secret)
    assert not denied.allowed
    assert denied.denial.http_status == 403
    assert "192.0.2.0/24" in denied.denial.message


@pytest.mark.parametrize(
    "path", ["id", "org_id", "display_prefix", "revoked", "revoke_time", "secret", "policy.x"]
)
def test_update_key_rejects_an_unknown_mask_path(
    admin: AdminClient, org: admin_pb2.Org, path: str
) -> None:
    issued = create_key(admin, org.id, name="unchanged")
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.UpdateKey(
            admin_pb2.UpdateKeyRequest(
                key=admin_pb2.Key(id=issued.key.id, name="changed"),
                update_mask=FieldMask(paths=["name", path]),
            )
        ),
        f"cannot update {path}",
        "updatable: name, expire_time, metadata, policy",
    )
    assert admin.GetKey(admin_pb2.GetKeyRequest(id=issued.key.id)) == issued.key


def test_update_key_failures(admin: AdminClient, org: admin_pb2.Org) -> None:
    issued = create_key(admin, org.id)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    fails(
        grpc.StatusCode.NOT_FOUND,
        lambda: admin.UpdateKey(
            admin_pb2.UpdateKeyRequest(key=admin_pb2.Key(id="key_doesnotexist000000000"))
        ),
        "key 'key_doesnotexist000000000' not found",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.UpdateKey(admin_pb2.UpdateKeyRequest(key=admin_pb2.Key(name="x"))),
        "key.id is required",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.UpdateKey(
            admin_pb2.UpdateKeyRequest(
                key=admin_pb2.Key(
                    id=issued.key.id,
                    expire_time=timestamp(an_hour_ago),
                ),
                update_mask=FieldMask(paths=["expire_time"]),
            )
        ),
        "expire_time",
        an_hour_ago.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.UpdateKey(
            admin_pb2.UpdateKeyRequest(
                key=admin_pb2.Key(
                    id=issued.key.id, policy=admin_pb2.Policy(allowed_ip_ranges=["fe80::/200"])
                ),
                update_mask=FieldMask(paths=["policy"]),
            )
        ),
        "'fe80::/200' is not an IPv4 or IPv6 CIDR",
    )
    assert admin.GetKey(admin_pb2.GetKeyRequest(id=issued.key.id)) == issued.key


def test_revoke_key_is_idempotent_and_keeps_the_first_revoke_time(
    admin: AdminClient, org: admin_pb2.Org, check: Check
) -> None:
    issued = create_key(admin, org.id, name="soon revoked")
    assert check(issued.secret).allowed

    first = admin.RevokeKey(admin_pb2.RevokeKeyRequest(id=issued.key.id))

    assert first.revoked
    assert_recent(first.revoke_time)
    assert first.update_time == first.revoke_time
    assert first.name == "soon revoked"
    assert first.create_time == issued.key.create_time
    assert_revoked(check(issued.secret))

    second = admin.RevokeKey(admin_pb2.RevokeKeyRequest(id=issued.key.id))

    assert second == first
    assert admin.GetKey(admin_pb2.GetKeyRequest(id=issued.key.id)) == first


def test_a_revoked_key_cannot_be_updated_or_rotated(
    admin: AdminClient, org: admin_pb2.Org, check: Check
) -> None:
    issued = create_key(admin, org.id, name="revoked")
    revoked = admin.RevokeKey(admin_pb2.RevokeKeyRequest(id=issued.key.id))

    fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: admin.UpdateKey(
            admin_pb2.UpdateKeyRequest(
                key=admin_pb2.Key(id=issued.key.id, name="revived"),
                update_mask=FieldMask(paths=["name"]),
            )
        ),
        f"key '{issued.key.id}' is revoked",
        "create a new key",
    )
    fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: admin.RotateKey(admin_pb2.RotateKeyRequest(id=issued.key.id)),
        f"key '{issued.key.id}' is revoked",
        "create a new key",
    )
    assert admin.GetKey(admin_pb2.GetKeyRequest(id=issued.key.id)) == revoked
    assert_revoked(check(issued.secret))


@pytest.mark.parametrize("rpc", ["RevokeKey", "RotateKey"])
def test_revoke_and_rotate_failures(admin: AdminClient, rpc: str) -> None:
    request = getattr(admin_pb2, f"{rpc}Request")
    fails(
        grpc.StatusCode.NOT_FOUND,
        lambda: getattr(admin, rpc)(request(id="key_doesnotexist000000000")),
        "key 'key_doesnotexist000000000' not found",
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: getattr(admin, rpc)(request()),
        "id is required",
    )


def test_rotate_key_replaces_the_secret_at_once(
    admin: AdminClient, org: admin_pb2.Org, check: Check
) -> None:
    issued = create_key(
        admin,
        org.id,
        name="rotated",
        metadata={"a": "1"},
        policy=admin_pb2.Policy(allowed_models=["gpt-4o*"], allowed_ip_ranges=["127.0.0.0/8"]),
    )
    assert check(issued.secret, client_ip="127.0.0.1").allowed

    rotated = admin.RotateKey(admin_pb2.RotateKeyRequest(id=issued.key.id))

    assert SECRET.fullmatch(rotated.secret), rotated.secret
    assert rotated.secret != issued.secret
    key = rotated.key
    assert key.display_prefix == rotated.secret[:15]
    assert key.id == issued.key.id
    assert key.org_id == org.id
    assert key.name == "rotated"
    assert dict(key.metadata) == {"a": "1"}
    assert key.policy == issued.key.policy
    assert key.create_time == issued.key.create_time
    assert not key.revoked
    assert admin.GetKey(admin_pb2.GetKeyRequest(id=key.id)) == key

    allowed = check(rotated.secret, client_ip="127.0.0.1")
    assert allowed.allowed
    assert allowed.principal.key_id == key.id
    assert allowed.principal.key_display_prefix == key.display_prefix
    assert_unknown_key(check(issued.secret, client_ip="127.0.0.1"))


def test_list_keys_pages_through_an_org_in_order(admin: AdminClient, org: admin_pb2.Org) -> None:
    created = [create_key(admin, org.id, name=f"k{i}").key for i in range(7)]
    expected = sorted(created, key=lambda k: k.id)

    pages: list[list[admin_pb2.Key]] = []
    token = ""
    while True:
        page = admin.ListKeys(
            admin_pb2.ListKeysRequest(org_id=org.id, page_size=3, page_token=token)
        )
        pages.append(list(page.keys))
        token = page.next_page_token
        if not token:
            break
        assert len(pages) < 10, "ListKeys never returned an empty next_page_token"

    assert [len(p) for p in pages] == [3, 3, 1]
    assert [k for p in pages for k in p] == expected
    whole = admin.ListKeys(admin_pb2.ListKeysRequest(org_id=org.id, page_size=7))
    assert list(whole.keys) == expected
    assert whole.next_page_token == ""
    default = admin.ListKeys(admin_pb2.ListKeysRequest(org_id=org.id))
    assert list(default.keys) == expected
    assert default.next_page_token == ""


def test_list_keys_of_every_org(admin: AdminClient) -> None:
    orgs = [admin.CreateOrg(admin_pb2.CreateOrgRequest(org_id=unique_org_id())) for _ in range(2)]
    created = {create_key(admin, o.id).key.id: o.id for o in orgs for _ in range(2)}

    seen: list[admin_pb2.Key] = []
    token = ""
    for _ in range(1000):
        page = admin.ListKeys(admin_pb2.ListKeysRequest(page_size=5, page_token=token))
        seen.extend(page.keys)
        token = page.next_page_token
        if not token:
            break

    ids = [k.id for k in seen]
    assert ids == sorted(set(ids))
    assert {k.id: k.org_id for k in seen if k.id in created} == created


def test_list_orgs_pages_through_every_org_in_order(admin: AdminClient) -> None:
    created = {
        admin.CreateOrg(admin_pb2.CreateOrgRequest(org_id=unique_org_id("page"))).id
        for _ in range(7)
    }

    pages: list[list[admin_pb2.Org]] = []
    token = ""
    while True:
        page = admin.ListOrgs(admin_pb2.ListOrgsRequest(page_size=3, page_token=token))
        pages.append(list(page.orgs))
        token = page.next_page_token
        if not token:
            break
        assert len(pages) < 1000, "ListOrgs never returned an empty next_page_token"

    assert all(len(p) == 3 for p in pages[:-1])
    assert 1 <= len(pages[-1]) <= 3
    ids = [o.id for p in pages for o in p]
    assert ids == sorted(set(ids)), "every org exactly once, in order"
    assert created <= set(ids)
    whole = admin.ListOrgs(admin_pb2.ListOrgsRequest(page_size=1000))
    assert [o for p in pages for o in p] == list(whole.orgs)
    assert whole.next_page_token == ""


@pytest.mark.parametrize("page_size", [-1, 1001, 2**31 - 1])
def test_list_rejects_a_page_size_out_of_range(
    admin: AdminClient, org: admin_pb2.Org, page_size: int
) -> None:
    for call in (
        lambda: admin.ListOrgs(admin_pb2.ListOrgsRequest(page_size=page_size)),
        lambda: admin.ListKeys(admin_pb2.ListKeysRequest(org_id=org.id, page_size=page_size)),
    ):
        fails(grpc.StatusCode.INVALID_ARGUMENT, call, f"page_size {page_size}", "1000")


@pytest.mark.parametrize("token", ["garbage", "!!!!", "%%%", "abcd", "////"])
def test_list_rejects_a_garbage_page_token(
    admin: AdminClient, org: admin_pb2.Org, token: str
) -> None:
    for call in (
        lambda: admin.ListOrgs(admin_pb2.ListOrgsRequest(page_token=token)),
        lambda: admin.ListKeys(admin_pb2.ListKeysRequest(org_id=org.id, page_token=token)),
    ):
        fails(grpc.StatusCode.INVALID_ARGUMENT, call, "page_token", "next_page_token")


def test_a_page_token_only_continues_the_listing_that_issued_it(admin: AdminClient) -> None:
    orgs = [admin.CreateOrg(admin_pb2.CreateOrgRequest(org_id=unique_org_id())) for _ in range(2)]
    for each in orgs:
        for _ in range(2):
            create_key(admin, each.id)
    orgs_token = admin.ListOrgs(admin_pb2.ListOrgsRequest(page_size=1)).next_page_token
    keys_token = admin.ListKeys(
        admin_pb2.ListKeysRequest(org_id=orgs[0].id, page_size=1)
    ).next_page_token
    assert orgs_token
    assert keys_token

    for call in (
        lambda: admin.ListKeys(admin_pb2.ListKeysRequest(org_id=orgs[0].id, page_token=orgs_token)),
        lambda: admin.ListKeys(admin_pb2.ListKeysRequest(org_id=orgs[1].id, page_token=keys_token)),
        lambda: admin.ListKeys(admin_pb2.ListKeysRequest(page_token=keys_token)),
        lambda: admin.ListOrgs(admin_pb2.ListOrgsRequest(page_token=keys_token)),
    ):
        fails(grpc.StatusCode.INVALID_ARGUMENT, call, "page_token", "same org_id")
    rest = admin.ListKeys(
        admin_pb2.ListKeysRequest(org_id=orgs[0].id, page_size=1, page_token=keys_token)
    )
    assert [k.org_id for k in rest.keys] == [orgs[0].id]
    assert rest.next_page_token == ""


def test_list_keys_of_a_missing_org_is_not_found(admin: AdminClient) -> None:
    fails(
        grpc.StatusCode.NOT_FOUND,
        lambda: admin.ListKeys(admin_pb2.ListKeysRequest(org_id="no-such-org-here")),
        "org 'no-such-org-here' not found",
    )


# Secrets


def test_secrets_appear_only_when_issued(
    admin: AdminClient, org: admin_pb2.Org, check: Check
) -> None:
    issued = create_key(admin, org.id, name="secretive")
    rotated = admin.RotateKey(admin_pb2.RotateKeyRequest(id=issued.key.id))
    issued_secrets = (issued.secret, rotated.secret)
    assert issued.secret in str(issued)
    assert rotated.secret in str(rotated)

    outputs = [
        admin.GetKey(admin_pb2.GetKeyRequest(id=issued.key.id)),
        admin.ListKeys(admin_pb2.ListKeysRequest(org_id=org.id)),
        admin.ListKeys(admin_pb2.ListKeysRequest(page_size=1000)),
        admin.UpdateKey(
            admin_pb2.UpdateKeyRequest(
                key=admin_pb2.Key(id=issued.key.id, name="renamed"),
                update_mask=FieldMask(paths=["name"]),
            )
        ),
        check(rotated.secret),
        admin.RevokeKey(admin_pb2.RevokeKeyRequest(id=issued.key.id)),
        check(rotated.secret),
    ]

    for output in outputs:
        for secret in issued_secrets:
            assert secret not in str(output)
            assert secret[15:] not in str(output)


def test_redis_holds_only_the_sha256_of_secrets(
    admin: AdminClient, org: admin_pb2.Org, redis_url: str
) -> None:
    kept = create_key(admin, org.id, name="kept")
    revoked = create_key(admin, org.id, name="revoked")
    admin.RevokeKey(admin_pb2.RevokeKeyRequest(id=revoked.key.id))
    before_rotation = create_key(admin, org.id, name="rotated")
    rotated = admin.RotateKey(admin_pb2.RotateKeyRequest(id=before_rotation.key.id))
    issued_secrets = [kept.secret, revoked.secret, before_rotation.secret, rotated.secret]

    dump = redis_dump(redis_url)

    for secret in issued_secrets:
        assert secret not in dump
        assert secret[9:] not in dump, "the random part of a secret is in Redis"
    client = redis_client.sync_client(redis_url, decode_responses=True)
    with client:
        for secret, key_id in [
            (kept.secret, kept.key.id),
            (revoked.secret, revoked.key.id),
            (rotated.secret, rotated.key.id),
        ]:
            assert sha256(secret) in dump
            assert client.get(redis_keys.key_by_hash(sha256(secret))) == f"{org.id} {key_id}"
    assert sha256(before_rotation.secret) not in dump, "the old secret's hash outlived rotation"


def test_secrets_are_not_logged(
    admin: AdminClient, org: admin_pb2.Org, controlplane: ControlPlane, check: Check
) -> None:
    issued = create_key(admin, org.id)
    check(issued.secret)
    rotated = admin.RotateKey(admin_pb2.RotateKeyRequest(id=issued.key.id))
    check(issued.secret)
    check(rotated.secret)

    log = controlplane.process.log()

    for secret in (issued.secret, rotated.secret):
        assert secret[9:] not in log
    assert controlplane.admin_token not in log


# The admin token


RPC_REQUESTS = {
    "CreateOrg": admin_pb2.CreateOrgRequest(org_id="unauthenticated-org"),
    "GetOrg": admin_pb2.GetOrgRequest(id="unauthenticated-org"),
    "ListOrgs": admin_pb2.ListOrgsRequest(),
    "UpdateOrg": admin_pb2.UpdateOrgRequest(org=admin_pb2.Org(id="unauthenticated-org")),
    "DeleteOrg": admin_pb2.DeleteOrgRequest(id="unauthenticated-org", force=True),
    "CreateKey": admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id="unauthenticated-org")),
    "GetKey": admin_pb2.GetKeyRequest(id="key_x"),
    "ListKeys": admin_pb2.ListKeysRequest(),
    "UpdateKey": admin_pb2.UpdateKeyRequest(key=admin_pb2.Key(id="key_x")),
    "RevokeKey": admin_pb2.RevokeKeyRequest(id="key_x"),
    "RotateKey": admin_pb2.RotateKeyRequest(id="key_x"),
}


@pytest.mark.parametrize("rpc", sorted(RPC_REQUESTS))
@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", "Bearer wrong-token"),),
        (("authorization", "Bearer "),),
        (("x-admin-token", "Bearer wrong-token"),),
    ],
    ids=["no-metadata", "wrong-token", "empty-token", "wrong-header"],
)
def test_admin_rpcs_need_the_admin_token(
    controlplane: ControlPlane, admin: AdminClient, rpc: str, metadata: tuple[Any, ...]
) -> None:
    with grpc.insecure_channel(controlplane.addr) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        fails(
            grpc.StatusCode.UNAUTHENTICATED,
            lambda: getattr(stub, rpc)(RPC_REQUESTS[rpc], metadata=metadata, timeout=10),
            "authorization: Bearer <PRISM_ADMIN_TOKEN>",
        )
    fails(
        grpc.StatusCode.NOT_FOUND,
        lambda: admin.GetOrg(admin_pb2.GetOrgRequest(id="unauthenticated-org")),
    )


def test_the_token_without_bearer_is_refused(controlplane: ControlPlane) -> None:
    with grpc.insecure_channel(controlplane.addr) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        fails(
            grpc.StatusCode.UNAUTHENTICATED,
            lambda: stub.ListOrgs(
                admin_pb2.ListOrgsRequest(),
                metadata=(("authorization", controlplane.admin_token),),
                timeout=10,
            ),
            "Bearer",
        )


def test_check_needs_no_admin_token(admin: AdminClient, org: admin_pb2.Org, check: Check) -> None:
    issued = create_key(admin, org.id)

    response = check(issued.secret)

    assert response.allowed
    assert response.principal.key_id == issued.key.id


# Two replicas


@pytest.fixture(scope="module")
def second_replica(
    start_controlplane: Callable[..., ControlPlane],
) -> Iterator[tuple[ControlPlane, AdminClient, Check]]:
    replica = start_controlplane()
    with grpc.insecure_channel(replica.addr) as channel:
        authorizer = AuthorizerClient(channel)

        def check(api_key: str) -> authorizer_pb2.CheckResponse:
            return authorizer.Check(
                authorizer_pb2.CheckRequest(api_key=api_key, client_ip="127.0.0.1")
            )

        yield replica, AdminClient(channel, replica.admin_token), check


def test_two_replicas_share_orgs_and_keys(
    admin: AdminClient,
    check: Check,
    controlplane: ControlPlane,
    second_replica: tuple[ControlPlane, AdminClient, Check],
) -> None:
    replica, other_admin, other_check = second_replica
    assert replica.addr != controlplane.addr

    org = admin.CreateOrg(admin_pb2.CreateOrgRequest(org_id=unique_org_id("replica")))
    assert other_admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id)) == org
    issued = other_admin.CreateKey(
        admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org.id, name="via replica"))
    )
    assert admin.GetKey(admin_pb2.GetKeyRequest(id=issued.key.id)) == issued.key
    assert check(issued.secret).allowed
    assert other_check(issued.secret).allowed

    revoked = admin.RevokeKey(admin_pb2.RevokeKeyRequest(id=issued.key.id))

    assert other_admin.GetKey(admin_pb2.GetKeyRequest(id=issued.key.id)) == revoked
    assert_revoked(other_check(issued.secret))
    assert_revoked(check(issued.secret))
    fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: other_admin.RotateKey(admin_pb2.RotateKeyRequest(id=issued.key.id)),
        "revoked",
    )


def test_two_replicas_see_a_rotation_and_a_forced_delete_at_once(
    admin: AdminClient,
    check: Check,
    second_replica: tuple[ControlPlane, AdminClient, Check],
) -> None:
    _, other_admin, other_check = second_replica
    org = other_admin.CreateOrg(admin_pb2.CreateOrgRequest(org_id=unique_org_id("replica")))
    issued = create_key(admin, org.id)

    rotated = other_admin.RotateKey(admin_pb2.RotateKeyRequest(id=issued.key.id))

    assert_unknown_key(check(issued.secret))
    assert check(rotated.secret).allowed

    admin.DeleteOrg(admin_pb2.DeleteOrgRequest(id=org.id, force=True))

    assert_unknown_key(other_check(rotated.secret))
    fails(
        grpc.StatusCode.NOT_FOUND,
        lambda: other_admin.GetKey(admin_pb2.GetKeyRequest(id=issued.key.id)),
    )


def test_two_replicas_racing_for_one_org_id_create_it_once(
    admin: AdminClient, second_replica: tuple[ControlPlane, AdminClient, Check]
) -> None:
    _, other_admin, _ = second_replica
    clients = [admin, other_admin] * 4

    for _ in range(5):
        org_id = unique_org_id("race")
        with ThreadPoolExecutor(len(clients)) as pool:
            outcomes = list(pool.map(create_or_code, clients, [org_id] * len(clients)))

        assert outcomes.count("created") == 1, outcomes
        assert set(outcomes) == {"created", grpc.StatusCode.ALREADY_EXISTS}, outcomes


def create_or_code(client: AdminClient, org_id: str) -> str | grpc.StatusCode:
    try:
        client.CreateOrg(admin_pb2.CreateOrgRequest(org_id=org_id))
    except grpc.RpcError as error:
        return error.code()  # type: ignore[attr-defined]
    return "created"


def test_each_replica_accepts_only_its_own_admin_token(
    controlplane: ControlPlane,
    second_replica: tuple[ControlPlane, AdminClient, Check],
) -> None:
    replica, _, _ = second_replica
    assert replica.admin_token != controlplane.admin_token
    with grpc.insecure_channel(replica.addr) as channel:
        wrong = AdminClient(channel, controlplane.admin_token)
        fails(
            grpc.StatusCode.UNAUTHENTICATED,
            lambda: wrong.ListOrgs(admin_pb2.ListOrgsRequest()),
            "PRISM_ADMIN_TOKEN",
        )


# Ids are names, not Redis paths: `<org>:keys` is where Redis keeps an org's key index.


def refused_as_no_such_org(call: Callable[[], Any]) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    assert error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), (
        f"{error.code()}: {error.details()}"
    )


def test_an_org_id_naming_another_orgs_key_index_is_no_org(
    admin: AdminClient, org: admin_pb2.Org
) -> None:
    create_key(admin, org.id)
    lookalike = f"{org.id}:keys"

    refused_as_no_such_org(lambda: admin.GetOrg(admin_pb2.GetOrgRequest(id=lookalike)))
    refused_as_no_such_org(
        lambda: admin.UpdateOrg(admin_pb2.UpdateOrgRequest(org=admin_pb2.Org(id=lookalike)))
    )
    refused_as_no_such_org(lambda: admin.ListKeys(admin_pb2.ListKeysRequest(org_id=lookalike)))
    refused_as_no_such_org(lambda: create_key(admin, lookalike))


def test_deleting_an_org_id_naming_another_orgs_key_index_leaves_that_org_intact(
    admin: AdminClient, org: admin_pb2.Org, check: Check
) -> None:
    issued = create_key(admin, org.id)

    refused_as_no_such_org(
        lambda: admin.DeleteOrg(admin_pb2.DeleteOrgRequest(id=f"{org.id}:keys", force=True))
    )

    listed = admin.ListKeys(admin_pb2.ListKeysRequest(org_id=org.id))
    assert [k.id for k in listed.keys] == [issued.key.id]
    fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: admin.DeleteOrg(admin_pb2.DeleteOrgRequest(id=org.id)),
        "force",
    )
    assert check(issued.secret).allowed


# Starting and stopping


def test_health_reports_every_service_serving(controlplane: ControlPlane) -> None:
    with grpc.insecure_channel(controlplane.addr) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "prism.v1.Admin", "prism.v1.Authorizer"):
            response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert response.status == health_pb2.HealthCheckResponse.SERVING, service
        fails(
            grpc.StatusCode.NOT_FOUND,
            lambda: health.Check(
                health_pb2.HealthCheckRequest(service="prism.v1.Nope"), timeout=10
            ),
        )


@pytest.fixture
def good_settings(redis_url: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "PRISM_GRPC_LISTEN": f"127.0.0.1:{stack.free_port()}",
        "PRISM_ADMIN_TOKEN": "admin-" + secrets.token_urlsafe(16),
        "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
        "PRISM_UPSTREAM_API_KEY": "sk-upstream-test",
    }


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"PRISM_ADMIN_TOKEN": ""}, ["PRISM_ADMIN_TOKEN is not set"]),
        ({"PRISM_DATAPLANE_TOKEN": ""}, ["PRISM_DATAPLANE_TOKEN is not set"]),
        ({"PRISM_ADMIN_TOKEN": DATAPLANE_TOKEN}, ["PRISM_DATAPLANE_TOKEN is the same as"]),
        ({"PRISM_DATAPLANE_TOKEN": "short-token"}, ["PRISM_DATAPLANE_TOKEN is 11 characters"]),
        ({"PRISM_UPSTREAM_API_KEY": ""}, ["PRISM_UPSTREAM_API_KEY (or OPENAI_API_KEY)"]),
        ({"PRISM_GRPC_LISTEN": "50051"}, ["PRISM_GRPC_LISTEN", "host:port"]),
        ({"PRISM_GRPC_LISTEN": "unix://cp.sock"}, ["PRISM_GRPC_LISTEN", "unix:/absolute/path"]),
        ({"PRISM_UPSTREAM_URL": "api.openai.com"}, ["PRISM_UPSTREAM_URL", "http(s) URL"]),
        ({"REDIS_URL": "localhost:6379"}, ["REDIS_URL", "Redis URL"]),
        ({"REDIS_URL": "redis+cluster://127.0.0.1:7000/3"}, ["REDIS_URL", "only database 0"]),
        ({"PRISM_SLOT_LEASE_SECONDS": "0"}, ["PRISM_SLOT_LEASE_SECONDS='0'", "positive"]),
        ({"PRISM_SLOT_LEASE_SECONDS": "ten"}, ["PRISM_SLOT_LEASE_SECONDS='ten'", "positive"]),
        ({"PRISM_SLOT_LEASE_SECONDS": "0.1"}, ["PRISM_SLOT_LEASE_SECONDS=0.1", "at least 0.5"]),
    ],
    ids=[
        "no-admin-token",
        "no-dataplane-token",
        "dataplane-token-is-admin-token",
        "short-dataplane-token",
        "no-upstream-key",
        "bad-listen",
        "unix-socket-uri",
        "bad-upstream-url",
        "bad-redis-url",
        "cluster-url-with-a-database",
        "zero-slot-lease",
        "slot-lease-not-a-number",
        "slot-lease-too-short",
    ],
)
def test_a_bad_setting_stops_the_start_with_one_line(
    good_settings: dict[str, str], change: dict[str, str], says: list[str]
) -> None:
    result = start_and_fail("controlplane", good_settings | change)

    assert_one_clear_line(result, "controlplane", 2, "configuration error", *says)


def test_openai_api_key_stands_in_for_the_upstream_key(
    start_controlplane: Callable[..., ControlPlane],
) -> None:
    replica = start_controlplane(PRISM_UPSTREAM_API_KEY="", OPENAI_API_KEY="sk-fallback")
    with grpc.insecure_channel(replica.addr) as channel:
        replica_admin = AdminClient(channel, replica.admin_token)
        org = replica_admin.CreateOrg(admin_pb2.CreateOrgRequest())
        issued = replica_admin.CreateKey(
            admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org.id))
        )
        response = AuthorizerClient(channel).Check(
            authorizer_pb2.CheckRequest(api_key=issued.secret)
        )
    replica.process.stop()

    assert response.allowed, response.denial
    assert response.upstream.api_key == "sk-fallback"


def test_a_redis_that_does_not_answer_stops_the_start_with_one_line(
    good_settings: dict[str, str],
) -> None:
    nobody = f"redis://127.0.0.1:{stack.free_port()}/0"

    result = start_and_fail("controlplane", good_settings | {"REDIS_URL": nobody})

    assert_one_clear_line(result, "controlplane", 1, "Redis", "REDIS_URL")


def test_a_taken_port_stops_the_start_with_one_line(
    good_settings: dict[str, str], controlplane: ControlPlane
) -> None:
    result = start_and_fail(
        "controlplane", good_settings | {"PRISM_GRPC_LISTEN": controlplane.addr}
    )

    assert_one_clear_line(result, "controlplane", 1, f"PRISM_GRPC_LISTEN={controlplane.addr}")


def test_sigterm_stops_the_control_plane_cleanly(
    start_controlplane: Callable[..., ControlPlane],
) -> None:
    replica = start_controlplane()

    replica.process.stop()

    assert replica.process.popen.returncode == 0, replica.process.log()
    assert "Traceback" not in replica.process.log()


# Limits, budgets and read-only in policies


def test_a_policy_stored_before_a_limit_kind_existed_reads_as_without_that_limit(
    admin: AdminClient, redis_url: str
) -> None:
    limits = admin_pb2.RateLimits(
        requests_per_minute=admin_pb2.RateLimit(limit=600),
        concurrent_requests=admin_pb2.RateLimit(limit=8),
    )
    org = admin.CreateOrg(
        admin_pb2.CreateOrgRequest(
            org_id=unique_org_id("old-policy"),
            org=admin_pb2.Org(policy=admin_pb2.Policy(rate_limits=limits)),
        )
    )
    client = redis_client.sync_client(redis_url, decode_responses=True)
    stored = json.loads(client.get(redis_keys.org(org.id)))
    del stored["policy"]["rate_limits"]["concurrent_requests"]
    client.set(redis_keys.org(org.id), json.dumps(stored))
    client.close()

    shown = admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id)).policy.rate_limits
    assert shown.requests_per_minute.limit == 600
    assert not shown.HasField("concurrent_requests")


def test_limits_and_budgets_round_trip_and_a_sub_field_update_keeps_the_rest(
    admin: AdminClient, org: admin_pb2.Org
) -> None:
    limits = admin_pb2.RateLimits(
        requests_per_minute=admin_pb2.RateLimit(limit=600),
        tokens_per_minute=admin_pb2.RateLimit(limit=90000, shadow=True),
        concurrent_requests=admin_pb2.RateLimit(limit=8),
    )
    budgets = admin_pb2.Budgets(daily_usd=12.5, monthly_usd=300, total_usd=0.000001)
    created = create_key(
        admin,
        org.id,
        policy=admin_pb2.Policy(
            allowed_models=["gpt-4o"], read_only=True, rate_limits=limits, budgets=budgets
        ),
    )

    updated = admin.UpdateKey(
        admin_pb2.UpdateKeyRequest(
            key=admin_pb2.Key(
                id=created.key.id,
                policy=admin_pb2.Policy(budgets=admin_pb2.Budgets(daily_usd=20)),
            ),
            update_mask=FieldMask(paths=["policy.budgets"]),
        )
    )

    assert created.key.policy.rate_limits == limits
    assert created.key.policy.budgets == budgets
    assert created.key.policy.read_only
    assert updated.policy.budgets == admin_pb2.Budgets(daily_usd=20)
    assert updated.policy.rate_limits == limits
    assert updated.policy.read_only and list(updated.policy.allowed_models) == ["gpt-4o"]
    assert admin.GetKey(admin_pb2.GetKeyRequest(id=created.key.id)) == updated


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        (
            admin_pb2.Policy(
                rate_limits=admin_pb2.RateLimits(requests_per_minute=admin_pb2.RateLimit(limit=-1))
            ),
            "policy.rate_limits.requests_per_minute.limit is -1",
        ),
        (
            admin_pb2.Policy(budgets=admin_pb2.Budgets(monthly_usd=-5)),
            "policy.budgets.monthly_usd is -5",
        ),
        (
            admin_pb2.Policy(budgets=admin_pb2.Budgets(total_usd=float("nan"))),
            "policy.budgets.total_usd is nan",
        ),
    ],
)
def test_bad_limits_and_budgets_are_invalid_arguments(
    admin: AdminClient, org: admin_pb2.Org, policy: admin_pb2.Policy, says: str
) -> None:
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.UpdateOrg(
            admin_pb2.UpdateOrgRequest(org=admin_pb2.Org(id=org.id, policy=policy))
        ),
        says,
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: admin.CreateKey(
            admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org.id, policy=policy))
        ),
        says,
    )
