"""Search filters on vector store files' attributes: the spec's ComparisonFilter (eq, ne,
gt, gte, lt, lte, in, nin) and CompoundFilter (and, or). A filter is checked whole when the
search request is read (`check_filter`), so evaluating it later cannot fail."""

from collections.abc import Mapping
from typing import Any

from engine.retrieval.errors import ParamError

_COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
_COMPOUNDS = ("and", "or")


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def check_filter(spec: Any, param: str = "filters") -> None:
    """Raises ParamError naming the first malformed field."""
    if not isinstance(spec, Mapping):
        raise ParamError(param, f"Invalid type for '{param}': expected an object.")
    kind = spec.get("type")
    if kind in _COMPOUNDS:
        extra = sorted(set(spec) - {"type", "filters"})
        if extra:
            raise ParamError(f"{param}.{extra[0]}", f"Unknown parameter: '{param}.{extra[0]}'.")
        filters = spec.get("filters")
        if not isinstance(filters, list):
            raise ParamError(f"{param}.filters", f"Invalid '{param}.filters': expected an array.")
        for position, item in enumerate(filters):
            check_filter(item, f"{param}.filters[{position}]")
        return
    if kind not in _COMPARISONS:
        choices = ", ".join(f"'{choice}'" for choice in (*_COMPARISONS, *_COMPOUNDS))
        raise ParamError(
            f"{param}.type",
            f"Invalid value: '{kind}'. Supported values are: {choices}.",
        )
    extra = sorted(set(spec) - {"type", "key", "value"})
    if extra:
        raise ParamError(f"{param}.{extra[0]}", f"Unknown parameter: '{param}.{extra[0]}'.")
    if not isinstance(spec.get("key"), str):
        raise ParamError(f"{param}.key", f"Invalid '{param}.key': expected a string.")
    value = spec.get("value")
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not all(_scalar(item) for item in value):
            raise ParamError(
                f"{param}.value",
                f"Invalid '{param}.value': '{kind}' expects an array of strings or numbers.",
            )
    elif not _scalar(value):
        raise ParamError(
            f"{param}.value",
            f"Invalid '{param}.value': expected a string, a number or a boolean.",
        )


def matches(spec: Mapping[str, Any], attributes: Mapping[str, Any]) -> bool:
    """Whether a file with these attributes passes the (checked) filter. A comparison on
    an attribute the file lacks, or of a string with a number, does not match."""
    kind = spec["type"]
    if kind == "and":
        return all(matches(item, attributes) for item in spec["filters"])
    if kind == "or":
        return any(matches(item, attributes) for item in spec["filters"])
    if spec["key"] not in attributes:
        return False
    actual, wanted = attributes[spec["key"]], spec["value"]
    if kind == "in":
        return actual in wanted
    if kind == "nin":
        return actual not in wanted
    if kind == "eq":
        return actual == wanted
    if kind == "ne":
        return actual != wanted
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (actual, wanted))
    if not (numbers or (isinstance(actual, str) and isinstance(wanted, str))):
        return False
    if kind == "gt":
        return actual > wanted
    if kind == "gte":
        return actual >= wanted
    if kind == "lt":
        return actual < wanted
    return actual <= wanted
