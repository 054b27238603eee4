"""Money as both planes count it: integers of micro-USD, so sums are exact."""

MICRO_USD = 1_000_000
# Cents are always shown; past them, only the digits a micro-USD amount really has.
_SHOWN_DECIMALS = 2


def usd(micro_usd: int) -> str:
    """An amount as messages show it, exact: `$2.00`, `$0.0005`, `$1,234.000001`."""
    sign = "-" if micro_usd < 0 else ""
    dollars, fraction = divmod(abs(micro_usd), MICRO_USD)
    decimals = f"{fraction:06d}".rstrip("0").ljust(_SHOWN_DECIMALS, "0")
    return f"{sign}${dollars:,}.{decimals}"
