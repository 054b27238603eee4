"""The Chat Completions client the run worker uses: streams a completion from the providers
routing names for the model, failing over to the next while nothing has been yielded yet."""

import logging
from collections.abc import AsyncIterator

from .chat_completions import ChatCompletionsProvider
from .offline import OfflineModel
from .provider import ModelProvider, ProviderFailure
from .routing import ProviderKind, Router
from .types import ChatEvent, ChatRequest, ModelError

log = logging.getLogger("engine.models")


class ChatClient:
    """One per process: its providers keep connections to the endpoints alive."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._providers: dict[ProviderKind, ModelProvider] = {
            ProviderKind.CHAT_COMPLETIONS: ChatCompletionsProvider(),
            ProviderKind.OFFLINE: OfflineModel(),
        }

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()

    async def complete(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Text deltas as they arrive, then assembled tool calls, then one Finished naming
        the provider that answered. Raises ModelError (and NoRouteError from routing)."""
        targets = self._router.resolve(request.model)
        for number, target in enumerate(targets):
            started = False
            try:
                async for event in self._providers[target.kind].stream(request, target):
                    started = True
                    yield event
                return
            except ProviderFailure as failure:
                where = f"provider {target.route!r} ({target.host})"
                if started:
                    raise ModelError(
                        "server_error", f"{where} failed mid-answer: {failure.message}"
                    ) from None
                if not failure.retryable or number == len(targets) - 1:
                    raise ModelError(failure.code, f"{where}: {failure.message}") from None
                log.warning(
                    "model %s: %s failed before answering (%s); trying %r",
                    request.model,
                    where,
                    failure.message,
                    targets[number + 1].route,
                )
        # Only an empty plan gets here; a completion must never end without Finished.
        raise ModelError("server_error", f"no provider to try for model {request.model!r}")
