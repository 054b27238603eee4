"""Prism end-to-end suite, with the fault proxy it puts in front of the engine."""
