"""Unknown query parameters are refused (422 naming them), on every route of both services.

FastAPI ignores a query parameter no route declares, so ``GET /trainings?symbl=AAPL``
answered the whole list as if filtered. :data:`REFUSE_UNKNOWN_QUERY_PARAMETERS` is an
app-wide dependency: it compares the request's parameters with those the matched route
declares (its dependencies' included) and names the others.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from training_sessions.errors import InvalidRequestError


class UnknownQueryParameterError(InvalidRequestError):
    """A query parameter the route does not take."""


def accepted_query_parameters(route: APIRoute) -> tuple[str, ...]:
    """The query parameters ``route`` declares, as clients spell them, sorted."""
    # A walk of a few fields per request: cheaper than any cache keyed by a route.
    return tuple(sorted(set(_query_names(route.dependant))))


def _query_names(dependant: Dependant) -> Iterator[str]:
    for field in dependant.query_params:
        model = field.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            # A query parameter model (``Annotated[Filters, Query()]``): its fields.
            for name, info in model.model_fields.items():
                yield info.alias or name
        else:
            yield field.alias
    for dependency in dependant.dependencies:
        yield from _query_names(dependency)


def refuse_unknown_query_parameters(request: Request) -> None:
    """Raise UnknownQueryParameterError when the request has a parameter its route lacks."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    accepted = accepted_query_parameters(route)
    unknown = sorted(set(request.query_params) - set(accepted))
    if not unknown:
        return
    named = ", ".join(f"'{name[:64]}'" for name in unknown[:10])
    plural = "s" if len(unknown) > 1 else ""
    takes = f"it accepts {', '.join(accepted)}" if accepted else "it takes no query parameters"
    raise UnknownQueryParameterError(f"unknown query parameter{plural} {named}; {takes}")


# ``FastAPI(dependencies=[REFUSE_UNKNOWN_QUERY_PARAMETERS])``: every route it serves.
REFUSE_UNKNOWN_QUERY_PARAMETERS = Depends(refuse_unknown_query_parameters)
