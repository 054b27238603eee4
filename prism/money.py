"""Money as both planes count it: integers of micro-USD, so sums are exact."""

MICRO_USD = 1_000_000
