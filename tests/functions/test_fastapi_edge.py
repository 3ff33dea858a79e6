"""chat/fastapi_edge.py: what the worker sees of each HTTP function (FastAPI types), and the conversions to
and from the `azure.functions` objects the handlers are written with."""

from __future__ import annotations

import inspect

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response, StreamingResponse
from chat.fastapi_edge import fastapi_edge, to_fastapi_response, to_func_request


def asgi_request(method: str, path: str, query: bytes, body: bytes, path_params: dict[str, str]) -> Request:
    chunks = [body[:3], body[3:]]

    async def receive():
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    scope = {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": query,
        "headers": [(b"host", b"chat.example"), (b"content-type", b"application/json"), (b"x-a", b"1")],
        "scheme": "https", "server": ("chat.example", 443), "root_path": "", "path_params": path_params,
    }
    return Request(scope, receive)


async def test_the_request_arrives_as_azure_functions_shows_it():
    req = await to_func_request(
        asgi_request(
            "POST", "/api/rooms/general/messages", b"x=1&y=%C3%A9", b'{"user":"a"}', {"room": "general"}
        )
    )
    assert req.method == "POST" and req.url == "https://chat.example/api/rooms/general/messages?x=1&y=%C3%A9"
    assert dict(req.params) == {"x": "1", "y": "é"} and dict(req.route_params) == {"room": "general"}
    assert req.headers["X-A"] == "1" and req.get_body() == b'{"user":"a"}'


async def test_responses_keep_status_headers_and_the_content_type_the_worker_would_send():
    json_answer = to_fastapi_response(func.HttpResponse(b"{}", status_code=201, mimetype="application/json",
                                                        headers={"Cache-Control": "no-store"}))
    assert json_answer.status_code == 201 and json_answer.body == b"{}"
    assert json_answer.headers["content-type"] == "application/json"
    assert json_answer.headers["cache-control"] == "no-store" and json_answer.headers["content-length"] == "2"
    text = to_fastapi_response(func.HttpResponse("hé", mimetype="text/plain"))
    assert text.headers["content-type"] == "text/plain; charset=utf-8" and text.body == "hé".encode()
    explicit = to_fastapi_response(func.HttpResponse(b"x", headers={"Content-Type": "image/svg+xml"}))
    assert explicit.headers["content-type"] == "image/svg+xml"
    stream = StreamingResponse(iter([b"a"]))
    assert to_fastapi_response(stream) is stream  # FileServer's stream passes through


async def test_the_wrapper_shows_the_worker_fastapi_types_and_passes_bindings_through():
    seen = {}

    def handler(
        req: func.HttpRequest, message: func.Out[str], documents: func.DocumentList
    ) -> func.HttpResponse:
        seen.update(req=req, message=message, documents=documents)
        return func.HttpResponse(b"ok", status_code=202)

    edge = fastapi_edge(handler)
    signature = inspect.signature(edge)
    assert signature.parameters["req"].annotation is Request and signature.return_annotation is Response
    assert signature.parameters["message"].annotation == func.Out[str]
    assert inspect.iscoroutinefunction(edge) and inspect.unwrap(edge) is handler
    marker = object()
    answer = await edge(req=asgi_request("GET", "/x", b"", b"", {}), message=marker, documents=[])
    assert answer.status_code == 202 and answer.body == b"ok"
    assert isinstance(seen["req"], func.HttpRequest) and seen["message"] is marker
