"""The engine's HTTP API: a blueprint per group of operations, each view registered as the
handler of one operation of the table (handlers.py)."""

from quart import Blueprint

from . import assistants, files, messages, runs, threads, vector_stores

BLUEPRINTS: tuple[Blueprint, ...] = tuple(
    module.bp for module in (assistants, threads, messages, files, runs, vector_stores)
)
