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

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from controlplane import limiter, policy, pricing, reservations
from controlplane.accounts import Accounts
from controlplane.charges import Charges
from controlplane.check_request import CheckInput, Decision, Principal, RateStatus, Upstream
from controlplane.check_script import CheckAnswer, CheckArgs, CheckOutcome, UsageArgs
from controlplane.credentials import Sealer
from controlplane.decisions import Decisions
from controlplane.errors import (
    CountersUnavailable,
    InvalidArgument,
    PermissionDenied,
    Unavailable,
)
from controlplane.grants import Grant, Grants
from controlplane.key_validation import KeyInfo, Validation, method_of
from controlplane.known_keys import KnownKey, KnownKeys, records, secret_hash
from controlplane.limiter import Outcome
from controlplane.metrics import SLOT_RENEWALS
from controlplane.policy import Denial
from controlplane.pricing import RunCharge, StepCharge
from controlplane.record_request import RecordInput, charges, count_charged
from controlplane.records import KeyRecord, OrgRecord, now
from controlplane.reservations import Reservation
from controlplane.slot_leases import SlotLeases
from prism.addresses import parse_address

log = logging.getLogger("prism.controlplane")

# Decisions made again because records changed meanwhile (or after an assistant's model
# was looked up), before giving up with UNAVAILABLE.
_ATTEMPTS = 4


@dataclass(frozen=True)
class _Asked:
    answer: CheckAnswer
    # A denial the scripts did not make: the access rules', decided before asking, or
    # fail-open's refusal of a request that may create objects.
    denial: Denial | None
    # What check.lua was given, in order; none when it was not run.
    budgets: list[limiter.Budget] = field(default_factory=list)
    counters: list[limiter.Counter] = field(default_factory=list)
    reservation: Reservation | None = None


class Authorizer:
    def __init__(
        self,
        accounts: Accounts,
        decisions: Decisions,
        charges: Charges,
        slot_leases: SlotLeases,
        upstream: Upstream,
        grants: Grants,
        sealer: Sealer | None = None,
        *,
        fail_open: bool = False,
    ) -> None:
        self._accounts = accounts
        self._decisions = decisions
        self._charges = charges
        self._slot_leases = slot_leases
        self._grants = grants
        self._fail_open = fail_open
        self._keys = KnownKeys(accounts, upstream, sealer)

    async def check(self, request: CheckInput) -> Decision:
        if not request.api_key:
            return Decision(policy.missing_key())
        secret_sha256 = secret_hash(request.api_key)
        known = await self._keys.find(secret_sha256) if secret_sha256 else None
        checked_model = ""
        for _ in range(_ATTEMPTS):
            if not known or known.key.secret_sha256 != secret_sha256:
                self._keys.forget(secret_sha256)
                return Decision(policy.unknown_key(request.api_key))
            asked = await self._ask(known, request, checked_model)
            answer = asked.answer
            if answer.outcome is CheckOutcome.GONE:
                known = None
                continue
            if answer.outcome is CheckOutcome.STALE:
                known = self._keys.remember(secret_sha256, answer.key_json, answer.org_json)
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
            return self._limited_or_allowed(known, principal, found, request.request_id, asked)
        raise Unavailable("the key's records kept changing while the request was decided; retry")

    async def _ask(self, known: KnownKey, request: CheckInput, checked_model: str) -> _Asked:
        """The access rules' denial, if any, and the scripts' answer: with a denial, only
        whether the records it was decided with are still the stored ones; else also the
        objects, the model, budgets and every limit."""
        key, org = known.key, known.org
        denial = policy.decide(key, org, request.method, request.models, request.client_ip, now())
        if denial:
            args = CheckArgs(known.key_digest, known.org_digest, request.request_id, checked_model)
            return _Asked(await self._decisions.decide(org.id, key.id, args, count=False), denial)
        args = _check_args(known, request, checked_model)
        # Reads, deletes and cancels pass a spent budget: they add no cost.
        budgets = limiter.budgets(key, org, now()) if request.may_add_cost else []
        counters = limiter.counters(key, org, request.uses_model, self._slot_leases.lease_ms)
        reservation = await self._reservation(org.id, request, budgets)
        return await self._admit(org.id, key.id, args, request, budgets, counters, reservation)

    async def _reservation(
        self, org_id: str, request: CheckInput, budgets: list[limiter.Budget]
    ) -> Reservation | None:
        """What a request that starts model work under a budget reserves (reservations.py);
        None for others, and for a model without a price."""
        if not (request.uses_model and budgets):
            return None
        model = request.models[0] if request.models else ""
        price = await self._decisions.model_price(
            org_id, model, "" if model else request.model_object_id
        )
        amount = reservations.expected_cost(
            price, request.max_prompt_tokens, request.max_completion_tokens
        )
        if amount <= 0:
            return None
        if request.resumes_run:
            return Reservation(request.model_object_id, amount, by_request=False)
        return Reservation(request.request_id, amount, by_request=True)

    def grant(self, presented: str) -> Grant:
        """The decision a Check granted; PermissionDenied when it is forged or expired."""
        return self._grants.open(presented, time.time())

    async def renew(self, presented: Sequence[str]) -> list[bool]:
        """Renews the concurrency slots of the requests of the grants presented; per grant,
        whether its request still held one. A forged or expired grant renews nothing (False)
        and leaves the others' renewals be: one request's bad grant must not let every
        other slot of its data plane lapse."""
        opened: dict[int, Grant] = {}
        for index, grant in enumerate(presented):
            try:
                opened[index] = self.grant(grant)
            except PermissionDenied as refused:
                log.warning("Renew: grant %d of %d refused: %s", index + 1, len(presented), refused)
        answers = await self._slot_leases.renew(list(opened.values()))
        renewed = dict(zip(opened, answers, strict=True))
        SLOT_RENEWALS.labels("refused").inc(len(presented) - len(opened))
        SLOT_RENEWALS.labels("renewed").inc(sum(answers))
        SLOT_RENEWALS.labels("not_held").inc(len(answers) - sum(answers))
        return [renewed.get(index, False) for index in range(len(presented))]

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
            facts = await self._charges.charge_facts(seen.org_id, seen.key_id, models, run_ids)
            if facts.records:
                token_counters = limiter.token_counters(*records(*facts.records))
            runs, steps = charges(seen, facts)
        slot_sets = limiter.slot_sets(seen.org_id, seen.key_id) if seen.finished else []
        # `finished` may release a budget reservation.
        if not (seen.objects or seen.deleted_ids or runs or steps or seen.finished):
            return []
        recorded = await self._charges.record(
            seen.org_id,
            seen.key_id,
            seen.request_id,
            seen.sequence,
            seen.objects,
            seen.deleted_ids,
            runs,
            steps,
            token_counters,
            slot_sets,
            seen.finished,
        )
        count_charged(recorded, source)
        return recorded.charges

    async def upstream_of(self, org_id: str) -> Upstream:
        """Where and with which credential the org's requests go (the sweeper's fetches)."""
        return self._keys.upstream_for(await self._accounts.get_org(org_id))

    async def filter_owned(self, org_id: str, ids: Sequence[str]) -> list[str]:
        return await self._decisions.filter_owned(org_id, ids)

    async def validate(self, api_key: str, client_ip: str, model: str, route: str) -> Validation:
        """Whether the key is valid and, for each of client_ip, model and route given, whether
        the key's and its org's rules allow it. Reads the stored records afresh and counts
        nothing."""
        method = method_of(route) if route else None
        if client_ip and parse_address(client_ip) is None:
            raise InvalidArgument(f"client_ip {client_ip!r} is not an IPv4 or IPv6 address")
        if not api_key:
            return Validation(valid=False, denial=policy.missing_key())
        secret_sha256 = secret_hash(api_key)
        stored = await self._keys.stored(secret_sha256) if secret_sha256 else None
        if not stored:
            return Validation(valid=False, denial=policy.unknown_key(api_key))
        key, org = records(*stored)
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
        request: CheckInput,
        budgets: list[limiter.Budget],
        counters: list[limiter.Counter],
        reservation: Reservation | None,
    ) -> _Asked:
        """The check script's answer, with the counters it took and the reservation it held
        if allowed. With fail-open set, a Redis that refuses the counters' writes lets the
        request through uncounted and unreserved, unless it may create objects: those could
        not be recorded as the org's, so their creator could never reach them again."""
        try:
            answer = await self._decisions.decide(
                org_id, key_id, args, budgets, counters, reservation, count=True
            )
        except CountersUnavailable as error:
            if not self._fail_open:
                raise
            verified = await self._decisions.decide(org_id, key_id, args, count=False)
            if request.may_create:
                log.warning(
                    "%s refused (org %s): it may create objects, whose owner cannot be "
                    "recorded while %s",
                    args.request_id,
                    org_id,
                    error,
                )
                return _Asked(verified, policy.ownership_unrecordable())
            log.warning(
                "rate limits not applied to %s (org %s, PRISM_RATELIMIT_FAIL_OPEN): %s",
                args.request_id,
                org_id,
                error,
            )
            return _Asked(verified, None)
        return _Asked(answer, None, budgets, counters, reservation)

    def _limited_or_allowed(
        self,
        known: KnownKey,
        principal: Principal,
        found: list[Outcome],
        request_id: str,
        asked: _Asked,
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
        holds_slot = limiter.holds_slot(found)
        return Decision(
            principal=principal,
            upstream=known.upstream,
            rate_statuses=statuses,
            shadow_exceeded=shadow,
            # A reservation held by the request is released by its final Record unless
            # its response created a run.
            record_wanted=holds_slot
            or (asked.reservation is not None and asked.reservation.by_request),
            slot_lease_ms=self._slot_leases.lease_ms if holds_slot else 0,
            grant=self._grants.issue(principal.org_id, principal.key_id, request_id, time.time()),
        )


def _check_args(known: KnownKey, request: CheckInput, checked_model: str) -> CheckArgs:
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
    if answer.outcome is CheckOutcome.RESERVATION and asked.reservation is not None:
        return policy.reservation_too_large(
            asked.budgets[answer.index],
            asked.reservation.micro_usd,
            answer.spent_micro_usd,
            answer.reserved_micro_usd,
        )
    return None


def _status(outcome: Outcome) -> RateStatus:
    return RateStatus(outcome.counter.limit, outcome.remaining, outcome.reset_ms)
