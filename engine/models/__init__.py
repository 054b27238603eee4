"""The engine's model layer: which provider serves a model (routing), the one interface every
provider implements (provider), the OpenAI-compatible endpoint (chat_completions) and the
built-in offline model (offline) behind it, the client that fails over between them (chat),
and the assembly of a run's prompt into a Chat Completions request (prompt)."""
