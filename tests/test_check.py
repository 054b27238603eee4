"""prism.v1.Authorizer.Check over gRPC, as the data plane calls it (with the data planes'
token): the allowed answer with its principal, upstream and grant, and every denial with its
exact OpenAI-style status, type, code and param, and a message that names the rule."""

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from prism.v1 import admin_pb2, authorizer_pb2, authorizer_pb2_grpc
from tests.conftest import (
    CLIENT_IP,
    AdminClient,
    AuthorizerClient,
    Check,
    ControlPlane,
    IssueKey,
    Upstream,
)
from tools import stack

# Well formed (sk-prism- and 48 base62 characters), issued to nobody.
UNKNOWN_KEY = "sk-prism-" + "Zq7" * 15 + "wxyz"


def assert_denied(
    response: authorizer_pb2.CheckResponse,
    upstream: Upstream,
    *,
    status: int,
    type: str,
    code: str,
    param: str = "",
    mentions: Sequence[str] = (),
) -> str:
    """The exact denial, no upstream (nor its credential) given away; returns the message."""
    assert not response.allowed
    denial = response.denial
    assert (denial.http_status, denial.type, denial.code, denial.param) == (
        status,
        type,
        code,
        param,
    ), denial
    for fragment in mentions:
        assert fragment in denial.message, f"{fragment!r} not in {denial.message!r}"
    assert not response.HasField("upstream")
    assert upstream.api_key not in str(response)
    return denial.message


def deny_model(response: Any, upstream: Upstream, *mentions: str) -> str:
    return assert_denied(
        response,
        upstream,
        status=403,
        type="permission_denied",
        code="permission_denied",
        param="model",
        mentions=mentions,
    )


def deny_address(response: Any, upstream: Upstream, *mentions: str) -> str:
    return assert_denied(
        response,
        upstream,
        status=403,
        type="permission_denied",
        code="permission_denied",
        mentions=("allowed_ip_ranges", *mentions),
    )


def assert_allowed(response: authorizer_pb2.CheckResponse) -> None:
    assert response.allowed, response.denial
    assert not response.HasField("denial")


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


# Allowed


def test_an_allowed_key_gets_its_principal_and_the_upstream(
    check: Check, issue_key: IssueKey, shared_upstream: Upstream
) -> None:
    org, issued = issue_key()

    response = check(issued.secret, models=["gpt-4o"])

    assert_allowed(response)
    assert response.principal == authorizer_pb2.Principal(
        org_id=org.id, key_id=issued.key.id, key_display_prefix=issued.key.display_prefix
    )
    assert response.principal.key_display_prefix == issued.secret[:15]
    assert response.upstream == authorizer_pb2.Upstream(
        base_url=shared_upstream.url,
        api_key=shared_upstream.api_key,
        provider=urlsplit(shared_upstream.url).netloc,
    )
    assert issued.secret not in str(response)


def test_check_answers_only_a_caller_with_the_data_planes_token(
    controlplane: ControlPlane, issue_key: IssueKey
) -> None:
    _, issued = issue_key()
    request = authorizer_pb2.CheckRequest(api_key=issued.secret, client_ip=CLIENT_IP)
    with grpc.insecure_channel(controlplane.addr) as channel:
        stub = authorizer_pb2_grpc.AuthorizerStub(channel)
        for metadata in (
            (),
            (("authorization", "Bearer not-the-token"),),
            (("authorization", f"Bearer {controlplane.admin_token}"),),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                stub.Check(request, metadata=metadata, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        assert_allowed(AuthorizerClient(channel).Check(request))


# The key itself


def test_a_missing_key_is_401_missing_api_key(check: Check, shared_upstream: Upstream) -> None:
    response = check("")

    assert_denied(
        response,
        shared_upstream,
        status=401,
        type="invalid_request_error",
        code="missing_api_key",
        mentions=("didn't provide an API key", "Authorization: Bearer"),
    )
    assert not response.HasField("principal")


@pytest.mark.parametrize(
    "presented",
    [
        "sk-prism-tooShort",
        "sk-prism-" + "a" * 47 + "!",
        "sk-prism-" + "b" * 20 + " " + "c" * 27,
        "sk-proj-" + "d" * 48,
        "Bearer sk-prism-" + "e" * 48,
        "not a key at all, but long enough to be masked",
        "abc123",
    ],
)
def test_a_malformed_key_is_401_invalid_api_key_and_masked(
    check: Check, shared_upstream: Upstream, presented: str
) -> None:
    response = check(presented)

    message = assert_denied(
        response,
        shared_upstream,
        status=401,
        type="invalid_request_error",
        code="invalid_api_key",
        mentions=("Incorrect API key provided",),
    )
    assert presented not in message
    assert not response.HasField("principal")


def test_an_unknown_well_formed_key_is_401_invalid_api_key_and_masked(
    check: Check, shared_upstream: Upstream
) -> None:
    response = check(UNKNOWN_KEY)

    message = assert_denied(
        response,
        shared_upstream,
        status=401,
        type="invalid_request_error",
        code="invalid_api_key",
        mentions=("Incorrect API key provided", "sk-prism-Zq****wxyz"),
    )
    assert UNKNOWN_KEY not in message
    assert UNKNOWN_KEY[9:] not in message
    assert not response.HasField("principal")


def test_a_revoked_key_is_401_invalid_api_key_saying_revoked(
    check: Check, issue_key: IssueKey, admin: AdminClient, shared_upstream: Upstream
) -> None:
    org, issued = issue_key()
    assert_allowed(check(issued.secret))
    admin.RevokeKey(admin_pb2.RevokeKeyRequest(id=issued.key.id))

    response = check(issued.secret)

    message = assert_denied(
        response,
        shared_upstream,
        status=401,
        type="invalid_request_error",
        code="invalid_api_key",
        mentions=("revoked", issued.key.display_prefix),
    )
    assert issued.secret not in message
    assert response.principal.key_id == issued.key.id
    assert response.principal.org_id == org.id


def test_an_expired_key_is_401_invalid_api_key_saying_when(
    check: Check, issue_key: IssueKey, admin: AdminClient, shared_upstream: Upstream
) -> None:
    org, _ = issue_key()
    expires = datetime.now(UTC) + timedelta(seconds=2)
    issued = admin.CreateKey(
        admin_pb2.CreateKeyRequest(
            key=admin_pb2.Key(org_id=org.id, name="short-lived", expire_time=timestamp(expires))
        )
    )
    assert_allowed(check(issued.secret))

    deadline = time.monotonic() + 15
    response = check(issued.secret)
    while response.allowed and time.monotonic() < deadline:
        time.sleep(0.1)
        response = check(issued.secret)

    message = assert_denied(
        response,
        shared_upstream,
        status=401,
        type="invalid_request_error",
        code="invalid_api_key",
        mentions=("expired", issued.key.display_prefix, expires.strftime("%Y-%m-%dT%H:%M:%S")),
    )
    assert issued.secret not in message
    assert "revoked" not in message
    assert datetime.now(UTC) >= expires, "denied as expired before its expire_time"
    assert response.principal.key_id == issued.key.id


# Models


@pytest.mark.parametrize(
    "models", [[], ["gpt-4o"], ["gpt-4o-mini"], ["gpt-4o-2024-08-06", "gpt-4o-mini"]]
)
def test_a_key_glob_allows_matching_models(
    check: Check, issue_key: IssueKey, models: list[str]
) -> None:
    _, issued = issue_key(allowed_models=["gpt-4o*"])

    assert_allowed(check(issued.secret, models=models))


@pytest.mark.parametrize("model", ["gpt-4", "gpt-4-turbo", "o1-mini", "my-gpt-4o"])
def test_a_key_glob_denies_other_models(
    check: Check, issue_key: IssueKey, shared_upstream: Upstream, model: str
) -> None:
    org, issued = issue_key(allowed_models=["gpt-4o*"])

    response = check(issued.secret, models=[model])

    deny_model(response, shared_upstream, f"'{model}'", "key", "gpt-4o*")
    assert response.principal.key_id == issued.key.id
    assert response.principal.org_id == org.id


def test_model_globs_follow_fnmatch_and_are_case_sensitive(
    check: Check, issue_key: IssueKey, shared_upstream: Upstream
) -> None:
    _, issued = issue_key(allowed_models=["gpt-4o?", "o[13]-mini"])

    for model in ("gpt-4o1", "gpt-4oX", "o1-mini", "o3-mini"):
        assert_allowed(check(issued.secret, models=[model]))
    for model in ("GPT-4o1", "gpt-4o", "gpt-4o12", "o2-mini", "O1-mini"):
        deny_model(check(issued.secret, models=[model]), shared_upstream, f"'{model}'", "key")


def test_one_denied_model_among_several_denies_the_request(
    check: Check, issue_key: IssueKey, shared_upstream: Upstream
) -> None:
    _, issued = issue_key(allowed_models=["gpt-4o*", "o1"])

    message = deny_model(
        check(issued.secret, models=["gpt-4o-mini", "gpt-3.5-turbo", "o1"]),
        shared_upstream,
        "'gpt-3.5-turbo'",
        "key",
        "gpt-4o*",
    )
    assert "'gpt-4o-mini'" not in message
    assert "'o1'" not in message


def test_the_org_policy_denies_a_model_the_key_allows(
    check: Check, issue_key: IssueKey, shared_upstream: Upstream
) -> None:
    _, issued = issue_key(
        org_policy=admin_pb2.Policy(allowed_models=["gpt-4o-mini"]), allowed_models=["gpt-4o*"]
    )
    assert_allowed(check(issued.secret, models=["gpt-4o-mini"]))

    message = deny_model(
        check(issued.secret, models=["gpt-4o"]), shared_upstream, "'gpt-4o'", "org", "gpt-4o-mini"
    )
    assert "key" not in message.replace("API key", "")


def test_the_org_policy_applies_to_keys_without_a_policy(
    check: Check, issue_key: IssueKey, shared_upstream: Upstream
) -> None:
    _, issued = issue_key(org_policy=admin_pb2.Policy(allowed_models=["o1*"]))

    assert_allowed(check(issued.secret, models=["o1-mini"]))
    deny_model(check(issued.secret, models=["gpt-4o"]), shared_upstream, "'gpt-4o'", "org", "o1*")


# Client addresses


def test_a_key_cidr_allows_and_denies_addresses(
    check: Check, issue_key: IssueKey, shared_upstream: Upstream
) -> None:
    _, issued = issue_key(allowed_ip_ranges=["10.0.0.0/8", "192.0.2.0/24"])

    for inside in ("10.1.2.3", "10.255.255.255", "192.0.2.200"):
        assert_allowed(check(issued.secret, client_ip=inside))
    for outside in ("11.0.0.1", "192.0.3.1", "127.0.0.1"):
        deny_address(
            check(issued.secret, client_ip=outside),
            shared_upstream,
            outside,
            "key",
            "10.0.0.0/8",
            "192.0.2.0/24",
        )


def test_an_org_cidr_denies_addresses_the_key_allows(
    check: Check, issue_key: IssueKey, shared_upstream: Upstream
) -> None:
    _, issued = issue_key(
        org_policy=admin_pb2.Policy(allowed_ip_ranges=["10.1.0.0/16"]),
        allowed_ip_ranges=["10.0.0.0/8"],
    )

    assert_allowed(check(issued.secret, client_ip="10.1.9.9"))
    message = deny_address(
        check(issued.secret, client_ip="10.2.0.1"),
        shared_upstream,
        "10.2.0.1",
        "org",
        "10.1.0.0/16",
    )
    assert "10.0.0.0/8" not in message


def test_ipv6_cidrs(check: Check, issue_key: IssueKey, shared_upstream: Upstream) -> None:
    _, issued = issue_key(allowed_ip_ranges=["2001:db8::/32"])

    for inside in ("2001:db8::1", "2001:db8:ffff:ffff::42"):
        assert_allowed(check(issued.secret, client_ip=inside))
    for outside in ("2001:db9::1", "::1", "10.0.0.1"):
        deny_address(
            check(issued.secret, client_ip=outside),
            shared_upstream,
            outside,
            "key",
            "2001:db8::/32",
        )


def test_an_ipv4_mapped_ipv6_address_counts_as_its_ipv4_address(
    check: Check, issue_key: IssueKey, shared_upstream: Upstream
) -> None:
    """A dual-stack listener reports IPv4 clients as `::ffff:a.b.c.d`."""
    _, issued = issue_key(allowed_ip_ranges=["10.0.0.0/8"])

    assert_allowed(check(issued.secret, client_ip="::ffff:10.1.2.3"))
    deny_address(
        check(issued.secret, client_ip="::ffff:192.0.2.1"), shared_upstream, "key", "10.0.0.0/8"
    )


def test_an_ip_policy_denies_an_unknown_client_address(
    check: Check, issue_key: IssueKey, shared_upstream: Upstream
) -> None:
    _, restricted = issue_key(allowed_ip_ranges=["0.0.0.0/0", "::/0"])
    _, unrestricted = issue_key()

    for unknown in ("", "not-an-ip", "10.0.0.1:443"):
        deny_address(
            check(restricted.secret, client_ip=unknown), shared_upstream, "key", "0.0.0.0/0"
        )
        assert_allowed(check(unrestricted.secret, client_ip=unknown))
    assert_allowed(check(restricted.secret, client_ip="203.0.113.9"))


def test_an_org_ip_policy_denies_an_empty_client_address(
    check: Check, issue_key: IssueKey, shared_upstream: Upstream
) -> None:
    _, issued = issue_key(org_policy=admin_pb2.Policy(allowed_ip_ranges=["10.0.0.0/8"]))

    deny_address(check(issued.secret, client_ip=""), shared_upstream, "org", "10.0.0.0/8")


# No caches: every Check reads the rules as they are now


def test_an_org_policy_change_applies_to_the_next_check(
    check: Check, issue_key: IssueKey, admin: AdminClient, shared_upstream: Upstream
) -> None:
    org, issued = issue_key()
    assert_allowed(check(issued.secret, models=["gpt-4o"]))

    admin.UpdateOrg(
        admin_pb2.UpdateOrgRequest(
            org=admin_pb2.Org(id=org.id, policy=admin_pb2.Policy(allowed_models=["o1*"])),
            update_mask=FieldMask(paths=["policy.allowed_models"]),
        )
    )
    deny_model(check(issued.secret, models=["gpt-4o"]), shared_upstream, "'gpt-4o'", "org", "o1*")

    admin.UpdateOrg(
        admin_pb2.UpdateOrgRequest(
            org=admin_pb2.Org(id=org.id), update_mask=FieldMask(paths=["policy"])
        )
    )
    assert_allowed(check(issued.secret, models=["gpt-4o"]))


# Failing closed


def test_without_redis_check_is_an_unavailable_error_not_an_answer(
    start_controlplane: Callable[..., ControlPlane], tmp_path: Path, logs: Path
) -> None:
    """The data plane turns a gRPC error into 503: with Redis gone, no key may pass, and no
    denial may blame the key either. Once Redis is back, Check answers again."""
    port = stack.free_port()
    private_redis = stack.start_redis(port, tmp_path / "redis", logs)
    replica = start_controlplane(REDIS_URL=f"redis://127.0.0.1:{port}/0")
    with grpc.insecure_channel(replica.addr) as channel:
        replica_admin = AdminClient(channel, replica.admin_token)
        org = replica_admin.CreateOrg(admin_pb2.CreateOrgRequest())
        issued = replica_admin.CreateKey(
            admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org.id))
        )
        stub = AuthorizerClient(channel)
        request = authorizer_pb2.CheckRequest(api_key=issued.secret, client_ip=CLIENT_IP)
        assert_allowed(stub.Check(request))

        private_redis.stop()
        with pytest.raises(grpc.RpcError) as caught:
            stub.Check(request)
        error: Any = caught.value
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
        assert "Redis" in error.details()
        with pytest.raises(grpc.RpcError) as caught:
            replica_admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

        private_redis = stack.start_redis(port, tmp_path / "redis", logs)
        try:
            # The data was in memory only; the key is gone, and Check says so.
            response = stub.Check(request)
        finally:
            private_redis.stop()
            replica.process.stop()
    assert response.denial.code == "invalid_api_key"
    assert "Traceback" not in replica.process.log()
