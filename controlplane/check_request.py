"""What Check is asked about one proxied request (CheckInput, the objects it names) and
what it answers (Decision: a denial, or the principal and where the request goes)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from controlplane.policy import Denial
from controlplane.records import RequestLogging
from prism.operations import OPERATIONS_BY_NAME


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
    # The operation's route name (`POST /v1/threads/{thread_id}/runs`).
    route: str
    models: Sequence[str]
    objects: Sequence[ObjectRef]
    # The assistant a new run uses, or the run tool outputs are submitted to: with no
    # models named, its remembered model must be allowed.
    model_object_id: str
    uses_model: bool
    request_id: str
    # A new run's token bounds from the body (0: not given), for its budget reservation.
    max_prompt_tokens: int = 0
    max_completion_tokens: int = 0

    # What the operation table says of the route. A route not in it, which no data plane
    # sends, is taken the strictest way: it adds cost and creates objects.
    @property
    def may_add_cost(self) -> bool:
        operation = OPERATIONS_BY_NAME.get(self.route)
        return operation is None or operation.may_add_cost

    @property
    def may_create(self) -> bool:
        operation = OPERATIONS_BY_NAME.get(self.route)
        return operation is None or operation.may_create

    @property
    def resumes_run(self) -> bool:
        operation = OPERATIONS_BY_NAME.get(self.route)
        return operation is not None and operation.resumes_run


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
    # When it does: how long its slot is held unless the data plane renews it (Renew).
    slot_lease_ms: int = 0
    # Set when allowed: what Record and FilterOwned present for this request.
    grant: str = field(default="", repr=False)

    @property
    def allowed(self) -> bool:
        return self.denial is None
