"""The seam between failover (chat.py) and whatever produces a completion: the built-in
offline model (offline.py) and OpenAI-compatible endpoints (chat_completions.py) implement
`ModelProvider`, so failover treats every target of a plan alike."""

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from .routing import Target
from .types import ChatEvent, ChatRequest, Provider


class ProviderFailure(Exception):
    """One provider's failure; `retryable` ones let the next fallback try. `code` is the
    run's last_error code should this failure end the completion."""

    def __init__(self, message: str, *, retryable: bool, code: str = "server_error") -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code


class ModelProvider(ABC):
    @abstractmethod
    def stream(self, request: ChatRequest, target: Target) -> AsyncIterator[ChatEvent]:
        """The completion of `request` by `target`: text deltas as they arrive, then the
        assembled tool calls, then one Finished naming `answered_by(target)`. A failure
        raises ProviderFailure, whether before the first event or after."""

    @abstractmethod
    async def aclose(self) -> None:
        """Releases what the provider keeps open (connections)."""


def answered_by(target: Target) -> Provider:
    return Provider(route=target.route, host=target.host, model=target.model)
