"""Developer tooling: stub generation, the local stack, benchmarks."""
