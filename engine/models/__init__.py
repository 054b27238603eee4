"""The engine's model layer: which provider serves a model (routing), the streaming Chat
Completions client with failover (chat), the built-in offline model (offline), and the
assembly of a run's prompt into a Chat Completions request (prompt)."""
