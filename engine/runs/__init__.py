"""Runs: their objects, the queue in Redis and the workers that execute them."""
