"""Check: whether one proxied request may pass, and where it goes if it may. Record and
FilterOwned: what the gateway learns from responses, and the listings it filters with it, for
the org of the grant Check issued (grants.py). Validate: what an internal service may learn
of a key, without counting anything.

A decision costs one Redis round trip. The process remembers, per secret hash, the key's and
its org's records as last read, and decides the access rules with them; one Lua script then
confirms those records are still the stored ones (by digest), checks that the org owns every
object the request names, checks budgets and takes every rate limit at once. When a record
changed (a revocation, a new policy), the script answers with the fresh records instead and
the decision is made again; so a change applies on the very next request, on every worker,
with no cache to invalidate. Only a key's first request on a control plane costs two more
reads (its ids by hash, then its records).
"""

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from controlplane import keys, limiter, metrics, policy, pricing
from controlplane.check_script import CheckAnswer, CheckArgs, CheckOutcome, UsageArgs
from controlplane.credentials import Sealer, SealError
from controlplane.errors import CountersUnavailable, InvalidArgument, Unavailable
from controlplane.grants import Grant, Grants
from controlplane.limiter import Outcome
from controlplane.policy import Denial
from controlplane.pricing import RunCharge, StepCharge
from controlplane.records import KeyRecord, OrgRecord, RequestLogging, now
from controlplane.store import ChargeFacts, Recorded, Store
from prism.addresses import parse_address
from prism.runs import EndedRun

log = logging.getLogger("prism.controlplane")

# Principals remembered per control plane; each is a few KiB.
_REMEMBERED_KEYS = 10_000
# Decisions made again because records changed meanwhile (or after an assistant's model
# was looked up), before giving up with UNAVAILABLE.
_ATTEMPTS = 4


@dataclass(frozen=True)
class Upstream:
    """Where allowed requests go. The api_key is kept out of repr, and so out of logs."""

    base_url: str
    api_key: str = field(repr=False)
    # A short name for clients (`x-prism-provider`): the base URL's host, e.g. api.openai.com.
    provider: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "provider", urlsplit(self.base_url).netloc)


@dataclass(frozen=True)
class Principal:
    org_id: str
    key_id: str
    key_display_prefix: str
    # What the request log keeps of the org's bodies, told to the data plane with Check.
    request_logging: RequestLogging


@dataclass(frozen=True)
class ObjectRef:
    id: str
    # assistant, thread, message, run, file, vector_store, vector_store_file_batch
    kind: str
    # Where the body names it; "" for the path.
    param: str = ""


@dataclass(frozen=True)
class CheckInput:
    api_key: str = field(repr=False)
    client_ip: str
    method: str
    models: Sequence[str]
    objects: Sequence[ObjectRef]
    # The assistant a new run uses, or the run tool outputs are submitted to: with no
    # models named, its remembered model must be allowed.
    model_object_id: str
    uses_model: bool
    request_id: str


@dataclass(frozen=True)
class RateStatus:
    limit: int
    remaining: int
    reset_ms: int


@dataclass(frozen=True)
class Decision:
    denial: Denial | None = None
    principal: Principal | None = None
    upstream: Upstream | None = None
    # Per unit of prism.rate_limit_units a limit applies in: the tightest's status.
    rate_statuses: dict[str, RateStatus] = field(default_factory=dict)
    shadow_exceeded: tuple[str, ...] = ()
    # The request holds a concurrency slot, to be released by Record.
    record_wanted: bool = False
    # Set when allowed: what Record and FilterOwned present for this request.
    grant: str = field(default="", repr=False)

    @property
    def allowed(self) -> bool:
        return self.denial is None


@dataclass(frozen=True)
class KeyInfo:
    """What an internal service may know of a key: never its hash or an upstream secret."""

    org_id: str
    key_id: str
    key_display_prefix: str
    name: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class Validation:
    # The key exists and is neither revoked nor expired.
    valid: bool
    # Set when the key was recognised.
    key: KeyInfo | None = None
    # Why it is not valid, or the rule that refuses what was asked about.
    denial: Denial | None = None

    @property
    def allowed(self) -> bool:
        return self.valid and self.denial is None


@dataclass(frozen=True)
class StepSeen:
    """A run step seen completed with tool calls."""

    step_id: str
    run_id: str
    thread_id: str
    file_search_calls: int
    code_interpreter_calls: int


@dataclass(frozen=True)
class RecordInput:
    request_id: str
    org_id: str
    key_id: str
    # (id, kind, model, thread): model for assistants and runs, thread for runs and messages.
    objects: Sequence[tuple[str, str, str, str]]
    deleted_ids: Sequence[str]
    runs: Sequence[EndedRun]
    finished: bool
    steps: Sequence[StepSeen] = ()


@dataclass(frozen=True)
class _Known:
    """A key and its org as last read, with the digests the check script compares."""

    key: KeyRecord
    org: OrgRecord
    key_digest: str
    org_digest: str
    upstream: Upstream


@dataclass(frozen=True)
class _Asked:
    answer: CheckAnswer
    # The access rules' denial, decided before asking.
    denial: Denial | None
    # What check.lua was given, in order; none when it was not run.
    budgets: list[limiter.Budget] = field(default_factory=list)
    counters: list[limiter.Counter] = field(default_factory=list)


class Authorizer:
    def __init__(
        self,
        store: Store,
        upstream: Upstream,
        grants: Grants,
        sealer: Sealer | None = None,
        *,
        fail_open: bool = False,
    ) -> None:
        self._store = store
        self._upstream = upstream
        self._grants = grants
        self._sealer = sealer
        self._fail_open = fail_open
        self._known: OrderedDict[str, _Known] = OrderedDict()

    async def check(self, request: CheckInput) -> Decision:
        if not request.api_key:
            return Decision(policy.missing_key())
        secret_sha256 = _secret_hash(request.api_key)
        known = (
            (self._known.get(secret_sha256) or await self._read(secret_sha256))
            if secret_sha256
            else None
        )
        checked_model = ""
        for _ in range(_ATTEMPTS):
            if not known or known.key.secret_sha256 != secret_sha256:
                self._known.pop(secret_sha256, None)
                return Decision(policy.unknown_key(request.api_key))
            self._known.move_to_end(secret_sha256)
            asked = await self._ask(known, request, checked_model)
            answer = asked.answer
            if answer.outcome is CheckOutcome.GONE:
                known = None
                continue
            if answer.outcome is CheckOutcome.STALE:
                known = self._remember(secret_sha256, answer.key_json, answer.org_json)
                continue
            key, org = known.key, known.org
            principal = Principal(org.id, key.id, key.display_prefix, org.request_logging)
            denial = asked.denial or _script_denial(key, org, request, asked)
            if denial:
                return Decision(denial, principal)
            if answer.outcome is CheckOutcome.MODEL:
                # Allowed: decided again, with the model now checked.
                checked_model = answer.model
                continue
            found = limiter.outcomes(asked.counters, answer.counters)
            return self._limited_or_allowed(known, principal, found, request.request_id)
        raise Unavailable("the key's records kept changing while the request was decided; retry")

    async def _ask(self, known: _Known, request: CheckInput, checked_model: str) -> _Asked:
        """The access rules' denial, if any, and the scripts' answer: with a denial, only
        whether the records it was decided with are still the stored ones; else also the
        objects, the model, budgets and every limit."""
        key, org = known.key, known.org
        denial = policy.decide(key, org, request.method, request.models, request.client_ip, now())
        if denial:
            args = CheckArgs(known.key_digest, known.org_digest, request.request_id, checked_model)
            return _Asked(await self._store.decide(org.id, key.id, args, count=False), denial)
        args = _check_args(known, request, checked_model)
        budgets = limiter.budgets(key, org, now())
        counters = limiter.counters(key, org, request.uses_model)
        answer, counters = await self._admit(org.id, key.id, args, budgets, counters)
        return _Asked(answer, None, budgets, counters)

    def grant(self, presented: str) -> Grant:
        """The decision a Check granted; PermissionDenied when it is forged or expired."""
        return self._grants.open(presented, time.time())

    async def record(self, seen: RecordInput, source: str = "response") -> list[RunCharge]:
        """Records what a response (or, with source `sweeper`, the sweeper) showed, and
        answers the charge of each run the org created through the gateway: made now, or
        when the run was first seen. Runs and steps of runs it did not create charge
        nobody."""
        runs: list[RunCharge] = []
        steps: list[StepCharge] = []
        token_counters: list[limiter.Counter] = []
        if seen.runs or seen.steps:
            models = [name for run in seen.runs for name in (run.model, pricing.family(run.model))]
            run_ids = [run.run_id for run in seen.runs] + [step.run_id for step in seen.steps]
            facts = await self._store.charge_facts(seen.org_id, seen.key_id, models, run_ids)
            if facts.records:
                token_counters = limiter.token_counters(*_records(*facts.records))
            # Who created each run: recorded earlier, or by this very Record (a stream shows
            # a run created and ended).
            creators = facts.creators | {
                object_id: seen.key_id for object_id, kind, _, _ in seen.objects if kind == "run"
            }
            runs = [
                _run_charge(run, facts, creators[run.run_id])
                for run in seen.runs
                if run.run_id in creators
            ]
            steps = [
                _step_charge(step, facts, creators[step.run_id])
                for step in seen.steps
                if step.run_id in creators
            ]
        slot_sets = limiter.slot_sets(seen.org_id, seen.key_id) if seen.finished else []
        if not (seen.objects or seen.deleted_ids or runs or steps or slot_sets):
            return []
        recorded = await self._store.record(
            seen.org_id,
            seen.key_id,
            seen.request_id,
            seen.objects,
            seen.deleted_ids,
            runs,
            steps,
            token_counters,
            slot_sets,
        )
        _count(recorded, source)
        return recorded.charges

    async def upstream_of(self, org_id: str) -> Upstream:
        """Where and with which credential the org's requests go (the sweeper's fetches)."""
        return self._upstream_for(await self._store.get_org(org_id))

    async def filter_owned(self, org_id: str, ids: Sequence[str]) -> list[str]:
        return await self._store.filter_owned(org_id, ids)

    async def validate(self, api_key: str, client_ip: str, model: str, route: str) -> Validation:
        """Whether the key is valid and, for each of client_ip, model and route given, whether
        the key's and its org's rules allow it. Reads the stored records afresh and counts
        nothing."""
        method = _method_of(route) if route else None
        if client_ip and parse_address(client_ip) is None:
            raise InvalidArgument(f"client_ip {client_ip!r} is not an IPv4 or IPv6 address")
        if not api_key:
            return Validation(valid=False, denial=policy.missing_key())
        secret_sha256 = _secret_hash(api_key)
        stored = await self._stored(secret_sha256) if secret_sha256 else None
        if not stored:
            return Validation(valid=False, denial=policy.unknown_key(api_key))
        key, org = _records(*stored)
        info = KeyInfo(org.id, key.id, key.display_prefix, key.name, dict(key.metadata))
        unusable = policy.key_denial(key, now())
        if unusable:
            return Validation(valid=False, key=info, denial=unusable)
        denial = policy.rules_denial(key, org, method, [model] if model else [], client_ip or None)
        return Validation(valid=True, key=info, denial=denial)

    async def _admit(
        self,
        org_id: str,
        key_id: str,
        args: CheckArgs,
        budgets: list[limiter.Budget],
        counters: list[limiter.Counter],
    ) -> tuple[CheckAnswer, list[limiter.Counter]]:
        """The check script's answer, and the counters it took. With fail-open set, a Redis
        that refuses the counters' writes lets the request through uncounted."""
        try:
            answer = await self._store.decide(org_id, key_id, args, budgets, counters, count=True)
        except CountersUnavailable as error:
            if not self._fail_open:
                raise
            log.warning(
                "rate limits not applied to %s (org %s, PRISM_RATELIMIT_FAIL_OPEN): %s",
                args.request_id,
                org_id,
                error,
            )
            return await self._store.decide(org_id, key_id, args, count=False), []
        return answer, counters

    def _limited_or_allowed(
        self, known: _Known, principal: Principal, found: list[Outcome], request_id: str
    ) -> Decision:
        statuses = {unit: _status(outcome) for unit, outcome in limiter.reported(found).items()}
        refused = limiter.refusal(found)
        if refused:
            denial = policy.rate_limited(refused)
            return Decision(denial, principal, rate_statuses=statuses)
        shadow = tuple(limiter.shadow_exceeded(found))
        if shadow:
            log.warning(
                "shadow limits exceeded, not enforced: %s (org %s, key %s)",
                ", ".join(shadow),
                principal.org_id,
                principal.key_id,
            )
        return Decision(
            principal=principal,
            upstream=known.upstream,
            rate_statuses=statuses,
            shadow_exceeded=shadow,
            record_wanted=limiter.holds_slot(found),
            grant=self._grants.issue(principal.org_id, principal.key_id, request_id, time.time()),
        )

    async def _read(self, secret_sha256: str) -> _Known | None:
        stored = await self._stored(secret_sha256)
        return self._remember(secret_sha256, *stored) if stored else None

    async def _stored(self, secret_sha256: str) -> tuple[str, str] | None:
        """The records (JSON) of the key with this secret hash and of its org, as stored now;
        None when no key has it."""
        found = await self._store.find_key(secret_sha256)
        return (found and await self._store.load_raw(*found)) or None

    def _remember(self, secret_sha256: str, key_json: str, org_json: str) -> _Known:
        key, org = _records(key_json, org_json)
        known = _Known(key, org, _digest(key_json), _digest(org_json), self._upstream_for(org))
        self._known[secret_sha256] = known
        if len(self._known) > _REMEMBERED_KEYS:
            self._known.popitem(last=False)
        return known

    def _upstream_for(self, org: OrgRecord) -> Upstream:
        if org.upstream_credential is None:
            return self._upstream
        if self._sealer is None:
            raise Unavailable(
                f"org '{org.id}' has its own upstream credential but PRISM_MASTER_KEY is not set"
            )
        try:
            credential = self._sealer.open(org.id, org.upstream_credential)
        except SealError as error:
            raise Unavailable(str(error)) from None
        return Upstream(self._upstream.base_url, credential)


_ROUTE_METHODS = frozenset({"GET", "POST", "DELETE"})


def _check_args(known: _Known, request: CheckInput, checked_model: str) -> CheckArgs:
    """What the scripts check of a request the access rules allow."""
    key, org = known.key, known.org
    model_object = (
        request.model_object_id
        if request.model_object_id and not request.models and policy.restricts_models(key, org)
        else ""
    )
    # Counted with the decision when allowed: under the model the request names, else its
    # run's assistant's (or run's).
    usage = UsageArgs(
        key.id,
        request.models[0] if request.models else "",
        "" if request.models else request.model_object_id,
    )
    refs = tuple((ref.id, ref.kind) for ref in request.objects)
    return CheckArgs(
        known.key_digest,
        known.org_digest,
        request.request_id,
        checked_model,
        refs,
        model_object,
        usage,
    )


def _script_denial(
    key: KeyRecord, org: OrgRecord, request: CheckInput, asked: _Asked
) -> Denial | None:
    """The denial the scripts' answer makes, if any: an object the org does not own, a
    model not allowed or not known, a budget spent."""
    answer = asked.answer
    if answer.outcome is CheckOutcome.NOT_OWNED:
        ref = request.objects[answer.index]
        return policy.not_owned(ref.kind, ref.id, ref.param)
    if answer.outcome is CheckOutcome.MODEL:
        if not answer.model:
            return policy.unknown_object_model(request.model_object_id)
        return policy.model_denial(key, org, [answer.model])
    if answer.outcome is CheckOutcome.BUDGET:
        return policy.over_budget(asked.budgets[answer.index], answer.spent_micro_usd)
    return None


def _method_of(route: str) -> str:
    """The method of a route template (`POST /v1/threads/{thread_id}/runs`)."""
    method, _, path = route.partition(" ")
    if method not in _ROUTE_METHODS or not path.startswith("/v1/"):
        raise InvalidArgument(
            f"route {route!r} is not 'METHOD /v1/path-template', such as "
            "'POST /v1/threads/{thread_id}/runs'"
        )
    return method


def _secret_hash(presented: str) -> str:
    """The SHA-256 to look a presented key up by; "" for one Prism cannot have issued, which
    costs no Redis round trip."""
    return keys.sha256(presented) if keys.is_well_formed(presented) else ""


def _records(key_json: str, org_json: str) -> tuple[KeyRecord, OrgRecord]:
    return KeyRecord.from_json(json.loads(key_json)), OrgRecord.from_json(json.loads(org_json))


def _digest(record_json: str) -> str:
    """What lua/verify.lua compares with redis.sha1hex; not a secret's hash."""
    return hashlib.sha1(record_json.encode()).hexdigest()


def _status(outcome: Outcome) -> RateStatus:
    return RateStatus(outcome.counter.limit, outcome.remaining, outcome.reset_ms)


def _run_charge(run: EndedRun, facts: ChargeFacts, key_id: str) -> RunCharge:
    """The run priced now, charged to key_id, the key that created it."""
    price = pricing.price_of(run.model, facts.prices)
    return RunCharge(
        run_id=run.run_id,
        model=run.model,
        cost_micros=pricing.run_cost(
            price, run.prompt_tokens, run.cached_tokens, run.completion_tokens
        ),
        priced=price is not None,
        prompt_tokens=run.prompt_tokens,
        cached_tokens=run.cached_tokens,
        completion_tokens=run.completion_tokens,
        key_id=key_id,
        total_tokens=run.total_tokens,
    )


def _step_charge(step: StepSeen, facts: ChargeFacts, key_id: str) -> StepCharge:
    return StepCharge(
        step_id=step.step_id,
        thread_id=step.thread_id,
        file_search_calls=step.file_search_calls,
        file_search_micros=pricing.file_search_cost(facts.tool_fees, step.file_search_calls),
        code_interpreter=step.code_interpreter_calls > 0 and bool(step.thread_id),
        code_interpreter_micros=pricing.code_interpreter_cost(facts.tool_fees),
        key_id=key_id,
    )


def _count(recorded: Recorded, source: str) -> None:
    """The metrics of what this call newly charged."""
    for charge, new in zip(recorded.charges, recorded.new, strict=True):
        if not new:
            continue
        metrics.RUNS_CHARGED.labels(source).inc()
        metrics.TOKENS.labels(charge.model, "input").inc(charge.prompt_tokens)
        metrics.TOKENS.labels(charge.model, "cached").inc(charge.cached_tokens)
        metrics.TOKENS.labels(charge.model, "output").inc(charge.completion_tokens)
        metrics.COST_USD.labels(charge.model).inc(charge.cost_micros / pricing.MICRO_USD)
        if not charge.priced:
            metrics.UNPRICED_RUNS.labels(charge.model).inc()
    for file_search, code in recorded.step_micros:
        if file_search:
            metrics.COST_USD.labels(pricing.FILE_SEARCH).inc(file_search / pricing.MICRO_USD)
        if code:
            metrics.COST_USD.labels(pricing.CODE_INTERPRETER).inc(code / pricing.MICRO_USD)
