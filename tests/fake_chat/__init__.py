"""A fake Chat Completions provider for the engine's model tests: an asyncio server on a
real socket that speaks the wire format (streamed chat.completion.chunk SSE ending with
`data: [DONE]`, tool_calls deltas, include_usage) and fails on request (5xx, 429, a
connection cut mid-stream)."""
