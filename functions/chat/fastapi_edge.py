"""HTTP streams at the edge of the app: the worker sees FastAPI `Request -> Response`, the handlers keep
`azure.functions` types.

Why: FileServer must stream an external backend's response to the client, and only the worker's HTTP
streams mode (azurefunctions-extensions-http-fastapi, app setting `PYTHON_ENABLE_INIT_INDEXING=1`) can
return a body that is not fully in memory. That mode is app-wide: once one function takes the FastAPI
types, the host proxies every HTTP invocation to the worker's web server and `func.HttpRequest`
functions stop working. So every HTTP function is wrapped here, while `chat.handlers` and `proxies`
keep the plain `azure.functions` objects that their tests (and FileServer's in-process dispatch, which
calls `__wrapped__`) use.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func

# Importing the extension registers its Request/Response types with the worker, which is what turns HTTP
# streams on; fastapi's own classes are the same objects.
from azurefunctions.extensions.http.fastapi import Request, Response

Handler = Callable[..., func.HttpResponse | Response | Awaitable[func.HttpResponse | Response]]


async def to_func_request(req: Request) -> func.HttpRequest:
    """The request as `azure.functions` shows it: one value per query key, route values from the route."""
    return func.HttpRequest(
        method=req.method,
        url=str(req.url),
        headers=dict(req.headers.items()),
        params=dict(req.query_params.items()),
        route_params={k: str(v) for k, v in req.path_params.items()},
        body=await req.body(),
    )


def to_fastapi_response(resp: func.HttpResponse | Response) -> Response:
    """A handler's `func.HttpResponse` as the worker would have sent it (Content-Type from mimetype and, for
    text, charset); a FastAPI response (FileServer's stream) passes through untouched."""
    if isinstance(resp, Response):
        return resp
    headers = dict(resp.headers.items())
    if not any(k.lower() == "content-type" for k in headers):
        mimetype = resp.mimetype
        text = mimetype.startswith("text/")
        headers["Content-Type"] = f"{mimetype}; charset={resp.charset}" if text else mimetype
    return Response(content=resp.get_body(), status_code=resp.status_code, headers=headers)


def fastapi_edge(handler: Handler) -> Callable[..., Awaitable[Response]]:
    """Wrap an HTTP function written with `func.HttpRequest` so the worker indexes and calls it with the
    FastAPI types. Its other parameters (bindings) pass through by name, unchanged."""
    signature = inspect.signature(handler, eval_str=True)
    trigger = next(
        (name for name, p in signature.parameters.items() if p.annotation is func.HttpRequest), None
    )
    if trigger is None:
        raise TypeError(f"{handler.__name__} has no parameter annotated func.HttpRequest")

    @functools.wraps(handler)
    async def edge(**kwargs: Any) -> Response:
        kwargs[trigger] = await to_func_request(kwargs[trigger])
        result = handler(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return to_fastapi_response(result)

    parameters = [
        p.replace(annotation=Request) if p.name == trigger else p for p in signature.parameters.values()
    ]
    edge.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters, return_annotation=Response
    )
    edge.__annotations__ = {
        **{p.name: p.annotation for p in parameters if p.annotation is not inspect.Parameter.empty},
        "return": Response,
    }
    return edge
