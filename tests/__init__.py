"""Prism end-to-end suite and its fake upstream."""
