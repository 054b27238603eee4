"""How an engine module registers a view as the handler of one operation of the table
(prism/operations.py): the URL rule, method and endpoint come from the table, so the engine
serves exactly the paths the gateway forwards."""

from collections.abc import Callable
from typing import TypeVar

from quart import Blueprint

from prism.operations import OPERATIONS_BY_ID

View = TypeVar("View", bound=Callable[..., object])


def handles(blueprint: Blueprint, operation_id: str) -> Callable[[View], View]:
    operation = OPERATIONS_BY_ID[operation_id]
    return blueprint.route(operation.url_rule(), methods=[operation.method], endpoint=operation_id)
