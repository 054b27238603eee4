"""A generic HTTP fault proxy for the suite: it forwards every request to one upstream,
records what passes, and applies the faults a test injects. It knows nothing of the API
behind it beyond a method and a path pattern."""
