"""The control plane as an attacker on its network meets it: every RPC of Admin, Authorizer
and Keys refuses a bare peer, a wrong token, a client key and another kind of caller's
credential, and changes nothing; Record and FilterOwned act only for the org of a grant the
control plane issued and has not expired, so ownership, deletions and charges cannot be
forged and ownership cannot be probed; ValidateKey shows no secret and counts nothing."""

import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import openai
import pytest

from controlplane.grants import LIFETIME_SECONDS, Grants
from prism.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2, keys_pb2, keys_pb2_grpc
from tests.conftest import (
    DATAPLANE_TOKEN,
    AdminClient,
    AuthorizerClient,
    ControlPlane,
    CredentialedStub,
    IssueKey,
    Sdk,
    Upstream,
    tampered_grant,
)
from tests.test_policy_check import limits

FILE = authorizer_pb2.OBJECT_KIND_FILE
RUN = authorizer_pb2.OBJECT_KIND_RUN
SERVICES = {
    name: descriptor.services_by_name[name.split(".")[-1]]
    for name, descriptor in (
        ("prism.v1.Admin", admin_pb2.DESCRIPTOR),
        ("prism.v1.Authorizer", authorizer_pb2.DESCRIPTOR),
        ("prism.v1.Keys", keys_pb2.DESCRIPTOR),
    )
}
EVERY_RPC = [f"/{service}/{method.name}" for service, d in SERVICES.items() for method in d.methods]


@pytest.fixture(scope="module")
def channel(controlplane: ControlPlane) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(controlplane.addr) as opened:
        yield opened


@pytest.fixture(scope="module")
def service_token(admin: AdminClient) -> str:
    issued = admin.CreateServiceToken(admin_pb2.CreateServiceTokenRequest(name="trust-tests"))
    return str(issued.secret)


def _call(channel: grpc.Channel, rpc: str, authorization: str | None) -> grpc.StatusCode:
    """The status of an empty request to the RPC, with this `authorization` metadata."""
    call = channel.unary_unary(rpc, request_serializer=bytes, response_deserializer=bytes)
    metadata = (("authorization", authorization),) if authorization is not None else ()
    try:
        call(b"", metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[attr-defined,no-any-return]
    return grpc.StatusCode.OK


def _credentials(
    controlplane: ControlPlane, service_token: str, client_key: str
) -> dict[str, str | None]:
    return {
        "none": None,
        "empty": "",
        "not bearer": DATAPLANE_TOKEN,
        "wrong": "Bearer not-a-prism-token",
        "client key": f"Bearer {client_key}",
        "admin": f"Bearer {controlplane.admin_token}",
        "data plane": f"Bearer {DATAPLANE_TOKEN}",
        "service": f"Bearer {service_token}",
    }


# Whose credential each service answers.
ACCEPTED = {
    "prism.v1.Admin": {"admin"},
    "prism.v1.Authorizer": {"data plane"},
    "prism.v1.Keys": {"service", "admin"},
}


@pytest.mark.parametrize("rpc", EVERY_RPC)
def test_every_rpc_refuses_all_but_its_callers_credential(
    rpc: str,
    channel: grpc.Channel,
    controlplane: ControlPlane,
    service_token: str,
    issue_key: IssueKey,
) -> None:
    _, issued = issue_key()
    accepted = ACCEPTED[rpc.split("/")[1]]
    for name, authorization in _credentials(controlplane, service_token, issued.secret).items():
        if name not in accepted:
            status = _call(channel, rpc, authorization)
            assert status == grpc.StatusCode.UNAUTHENTICATED, (rpc, name, status)


# An RPC of each service that changes nothing, answered past the guard.
HARMLESS = {
    "prism.v1.Admin": "/prism.v1.Admin/ListOrgs",
    "prism.v1.Authorizer": "/prism.v1.Authorizer/FilterOwned",
    "prism.v1.Keys": "/prism.v1.Keys/ValidateKey",
}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_answers_its_callers(
    service: str,
    channel: grpc.Channel,
    controlplane: ControlPlane,
    service_token: str,
    issue_key: IssueKey,
) -> None:
    _, issued = issue_key()
    credentials = _credentials(controlplane, service_token, issued.secret)
    for name in ACCEPTED[service]:
        status = _call(channel, HARMLESS[service], credentials[name])
        # The servicer's own answer to an empty request: a list, a refused grant, a denial.
        assert status in (grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED), (name, status)


def test_a_refused_admin_call_changes_nothing(
    channel: grpc.Channel, admin: AdminClient, service_token: str
) -> None:
    create = admin_pb2.CreateOrgRequest(org_id="attacker-org")
    for token in ("not-the-token", DATAPLANE_TOKEN, service_token):
        with pytest.raises(grpc.RpcError) as refused:
            CredentialedStub(admin_pb2_grpc.AdminStub(channel), token).CreateOrg(create)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]

    with pytest.raises(grpc.RpcError) as missing:
        admin.GetOrg(admin_pb2.GetOrgRequest(id="attacker-org"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


def test_check_gives_an_upstream_key_and_believes_a_client_ip_only_from_a_data_plane(
    channel: grpc.Channel, issue_key: IssueKey, shared_upstream: Upstream, service_token: str
) -> None:
    """The old attack: a key fenced to 10.0.0.0/8, Checked from loopback claiming 10.9.9.9."""
    _, fenced = issue_key(allowed_ip_ranges=["10.0.0.0/8"])
    claim = authorizer_pb2.CheckRequest(api_key=fenced.secret, client_ip="10.9.9.9")

    for token in (None, "not-the-token", service_token):
        call = channel.unary_unary(
            "/prism.v1.Authorizer/Check",
            request_serializer=authorizer_pb2.CheckRequest.SerializeToString,
            response_deserializer=authorizer_pb2.CheckResponse.FromString,
        )
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        with pytest.raises(grpc.RpcError) as refused:
            call(claim, metadata=metadata, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        assert shared_upstream.api_key not in str(refused.value.details())  # type: ignore[attr-defined]


# Record and FilterOwned act for the grant's org only


@pytest.fixture(scope="module")
def authorizer(channel: grpc.Channel) -> AuthorizerClient:
    return AuthorizerClient(channel)


def _file_of(sdk: Sdk, secret: str) -> str:
    file = sdk(secret).files.create(file=("mine.txt", b"A's own words\n"), purpose="assistants")
    return str(file.id)


def _denied(call: Callable[[], Any], *says: str) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    for fragment in says:
        assert fragment in refused.value.details()  # type: ignore[attr-defined]


def test_a_forged_grant_records_nothing(
    authorizer: AuthorizerClient, issue_key: IssueKey, sdk: Sdk
) -> None:
    """B, holding the data planes' token and its own key, tries to take A's file, delete
    A's file for A, and read which ids A owns, with grants it made or changed."""
    org_a, a = issue_key()
    _, b = issue_key()
    a_file = _file_of(sdk, a.secret)
    b_grant = authorizer.grant(b.secret)
    forgeries = [
        tampered_grant(b_grant, org_a.id),
        # B's own grant, its signature spelled otherwise (base64 padding, a stray byte).
        b_grant + "==",
        b_grant + "!",
        Grants(b"a key of the attacker's own, 32 bytes").issue(
            org_a.id, "key_x", "req_x", time.time()
        ),
        "not-a-grant",
        "",
    ]

    for forged in forgeries:
        _denied(
            lambda f=forged: authorizer.Record(
                authorizer_pb2.RecordRequest(
                    grant=f, objects=[authorizer_pb2.OwnedObject(id=a_file, kind=FILE)]
                )
            ),
            "grant",
        )
        _denied(
            lambda f=forged: authorizer.Record(
                authorizer_pb2.RecordRequest(grant=f, deleted_ids=[a_file])
            )
        )
        _denied(
            lambda f=forged: authorizer.FilterOwned(
                authorizer_pb2.FilterOwnedRequest(grant=f, ids=[a_file])
            )
        )

    assert sdk(a.secret).files.retrieve(a_file).id == a_file
    with pytest.raises(openai.NotFoundError):
        sdk(b.secret).files.retrieve(a_file)


def test_an_expired_grant_records_nothing(
    authorizer: AuthorizerClient, issue_key: IssueKey, grant_key: bytes, sdk: Sdk
) -> None:
    org, issued = issue_key()
    _, other = issue_key()
    theirs = _file_of(sdk, other.secret)
    expired = Grants(grant_key).issue(
        org.id, issued.key.id, "req_old", time.time() - LIFETIME_SECONDS - 60
    )

    _denied(
        lambda: authorizer.Record(
            authorizer_pb2.RecordRequest(
                grant=expired, objects=[authorizer_pb2.OwnedObject(id=theirs, kind=FILE)]
            )
        ),
        "expired",
    )
    with pytest.raises(openai.NotFoundError):
        sdk(issued.secret).files.retrieve(theirs)


def test_another_orgs_grant_deletes_and_reveals_nothing_of_an_org(
    authorizer: AuthorizerClient, issue_key: IssueKey, sdk: Sdk
) -> None:
    _, a = issue_key()
    _, b = issue_key()
    a_file = _file_of(sdk, a.secret)
    b_grant = authorizer.grant(b.secret)

    authorizer.Record(authorizer_pb2.RecordRequest(grant=b_grant, deleted_ids=[a_file]))
    probed = authorizer.FilterOwned(
        authorizer_pb2.FilterOwnedRequest(grant=b_grant, ids=[a_file, "file-nobody"])
    )

    assert list(probed.ids) == []
    assert sdk(a.secret).files.retrieve(a_file).id == a_file


def test_a_run_nobody_created_through_the_gateway_charges_nobody(
    authorizer: AuthorizerClient,
    issue_key: IssueKey,
    admin: AdminClient,
    spend: Callable[[str, str], int],
) -> None:
    """The old attack: a forged `runs` entry charged an org $6,250."""
    org, issued = issue_key()
    forged = authorizer_pb2.RunUsage(
        run_id="run_forged",
        model="gpt-4",
        prompt_tokens=100_000_000,
        completion_tokens=50_000_000,
        total_tokens=150_000_000,
    )

    answer = authorizer.Record(
        authorizer_pb2.RecordRequest(grant=authorizer.grant(issued.secret), runs=[forged])
    )

    assert list(answer.runs) == []
    assert spend(org.id, "org") == 0
    assert spend(org.id, f"key:{issued.key.id}") == 0
    total = admin.GetUsage(admin_pb2.GetUsageRequest(org_id=org.id)).total
    assert (total.runs, total.cost_usd, total.input_tokens) == (0, 0.0, 0)


def test_a_run_is_charged_to_the_org_that_created_it_only(
    authorizer: AuthorizerClient,
    issue_key: IssueKey,
    sdk: Sdk,
    spend: Callable[[str, str], int],
) -> None:
    """A's run, shown in a Record with B's grant, is charged neither to B nor (again) to A."""
    org_a, a = issue_key()
    org_b, b = issue_key()
    client = sdk(a.secret)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    charged = spend(org_a.id, "org")
    assert run.usage is not None and charged > 0

    answer = authorizer.Record(
        authorizer_pb2.RecordRequest(
            grant=authorizer.grant(b.secret),
            runs=[
                authorizer_pb2.RunUsage(
                    run_id=run.id,
                    model=run.model,
                    prompt_tokens=run.usage.prompt_tokens,
                    completion_tokens=run.usage.completion_tokens,
                    total_tokens=run.usage.total_tokens,
                )
            ],
        )
    )

    assert list(answer.runs) == []
    assert spend(org_b.id, "org") == 0
    assert spend(org_a.id, "org") == charged


# ValidateKey


def test_validate_key_shows_no_secret_and_counts_nothing(
    channel: grpc.Channel,
    service_token: str,
    issue_key: IssueKey,
    admin: AdminClient,
    shared_upstream: Upstream,
    sdk: Sdk,
) -> None:
    org, issued = issue_key(rate_limits=limits(requests_per_minute=1))
    keys = CredentialedStub(keys_pb2_grpc.KeysStub(channel), service_token)

    answers = [
        keys.ValidateKey(
            keys_pb2.ValidateKeyRequest(
                api_key=issued.secret, client_ip="10.1.2.3", model="gpt-4o", route=route
            )
        )
        for route in ("GET /v1/assistants", "POST /v1/threads/{thread_id}/runs") * 3
    ]

    assert all(answer.valid and answer.allowed for answer in answers)
    shown = b"".join(answer.SerializeToString() for answer in answers)
    assert shared_upstream.api_key.encode() not in shown
    assert issued.secret.encode() not in shown
    stored = admin.GetKey(admin_pb2.GetKeyRequest(id=issued.key.id))
    assert answers[0].principal.key_display_prefix == stored.display_prefix
    # Six validations later, the key's one request a minute is still there to use.
    assert sdk(issued.secret).beta.assistants.list().object == "list"
    assert admin.GetUsage(admin_pb2.GetUsageRequest(org_id=org.id)).total.requests == 1


def test_validate_key_names_the_rule_that_denies(
    channel: grpc.Channel, service_token: str, issue_key: IssueKey, admin: AdminClient
) -> None:
    _, issued = issue_key(
        org_policy=admin_pb2.Policy(allowed_ip_ranges=["10.0.0.0/8"]),
        allowed_models=["gpt-4o-mini"],
        read_only=True,
    )
    keys = CredentialedStub(keys_pb2_grpc.KeysStub(channel), service_token)

    def rule(**asked: str) -> str:
        answer = keys.ValidateKey(keys_pb2.ValidateKeyRequest(api_key=issued.secret, **asked))
        assert answer.valid
        return str(answer.denial.rule) if not answer.allowed else ""

    assert rule() == ""
    assert rule(model="gpt-4o") == "key.allowed_models"
    assert rule(route="POST /v1/assistants") == "key.read_only"
    assert rule(route="GET /v1/assistants", client_ip="192.0.2.1") == "org.allowed_ip_ranges"
    assert rule(model="gpt-4o-mini", client_ip="10.0.0.9", route="GET /v1/files") == ""
    admin.RevokeKey(admin_pb2.RevokeKeyRequest(id=issued.key.id))
    revoked = keys.ValidateKey(keys_pb2.ValidateKeyRequest(api_key=issued.secret))
    assert not revoked.valid and revoked.denial.rule == "key.revoked"
    assert revoked.principal.key_id == issued.key.id
    for presented, code in (("", "missing_api_key"), ("sk-prism-short", "invalid_api_key")):
        unknown = keys.ValidateKey(keys_pb2.ValidateKeyRequest(api_key=presented))
        assert (unknown.valid, unknown.allowed, unknown.denial.code) == (False, False, code)
        assert not unknown.HasField("principal")
    for bad in ({"route": "assistants"}, {"client_ip": "not-an-ip"}):
        with pytest.raises(grpc.RpcError) as invalid:
            keys.ValidateKey(keys_pb2.ValidateKeyRequest(api_key=issued.secret, **bad))
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


def test_an_object_kind_that_does_not_exist_is_invalid(
    authorizer: AuthorizerClient, issue_key: IssueKey
) -> None:
    _, issued = issue_key()
    check = authorizer_pb2.CheckRequest(
        api_key=issued.secret,
        objects=[authorizer_pb2.ObjectRef(id="x", kind=99)],  # type: ignore[arg-type]
    )
    record = authorizer_pb2.RecordRequest(
        grant=authorizer.grant(issued.secret),
        objects=[authorizer_pb2.OwnedObject(id="x", kind=authorizer_pb2.OBJECT_KIND_UNSPECIFIED)],
    )

    for call in (lambda: authorizer.Check(check), lambda: authorizer.Record(record)):
        with pytest.raises(grpc.RpcError) as invalid:
            call()
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
