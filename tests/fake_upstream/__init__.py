"""A stateful fake of the OpenAI Assistants API (plus Files and Vector stores), the one
fake in the suite: the upstream the gateway forwards to. Run it with
`python -m tests.fake_upstream --listen HOST:PORT --api-key KEY --data-dir DIR`."""
