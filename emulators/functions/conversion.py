"""Marshalling between the host's typed data and the Python objects a handler sees.

The real worker receives `TypedData` from the host and hands it to the converters registered by
the `azure.functions` library (`HttpRequestConverter`, `CosmosDBConverter`, ...), falling back to a
generic converter (str/bytes) for binding types the library does not know (SignalR). Using the
same converters here means handlers get exactly the same Python types as in Azure.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func
from aiohttp import web
from azure.functions import meta
from multidict import CIMultiDict

from .retry import RetryContext

Datum = meta.Datum


class Out(func.Out):
    """The worker's `Out`: a settable box per output binding."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class Context(func.Context):
    """The `context` parameter a handler may declare."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str,
                 retry_context: Any = None) -> None:
        self._invocation_id = invocation_id
        self._retry_context = retry_context
        self._function_name = function_name
        self._function_directory = function_directory

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        import threading

        return threading.local()

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        """As the worker: always a RetryContext (retry_count 0 and max_retry_count 0 without a policy)."""
        if self._retry_context is None:
            self._retry_context = RetryContext()
        return self._retry_context


def converter_for(binding_type: str) -> Any:
    return meta.get_binding_registry().get(binding_type)


def decode(binding_type: str, datum: Datum, annotation: Any = None) -> Any:
    """Typed data → handler argument, as the worker's `from_incoming_proto`."""
    conv = converter_for(binding_type)
    if conv is not None and not (isinstance(annotation, type) and issubclass(annotation, (str, bytes))
                                 and not conv.check_input_type_annotation(annotation)):
        return conv.decode(datum, trigger_metadata={})
    # Generic binding: the string (or JSON text) / bytes as they came.
    if datum.type in ("string", "json", "bytes"):
        return datum.value
    if datum.type is None:
        return None
    raise TypeError(f"unsupported typed data {datum.type!r} for a {binding_type} binding")


def encode(binding_type: str, value: Any, expected_type: Any = None) -> Datum:
    """Handler output → typed data, as the worker's `to_outgoing_proto`."""
    conv = converter_for(binding_type)
    if conv is not None:
        try:
            return conv.encode(value, expected_type=expected_type)
        except NotImplementedError:
            raise TypeError(
                f"unable to encode outgoing {binding_type} data: unsupported Python type "
                f"{type(value).__name__}") from None
    if isinstance(value, str):
        return Datum(type="string", value=value)
    if isinstance(value, (bytes, bytearray)):
        return Datum(type="bytes", value=bytes(value))
    raise TypeError(f"unable to encode outgoing {binding_type} data: a generic binding takes str or bytes, "
                    f"got {type(value).__name__}")


def datum_json(datum: Datum) -> Any:
    """Parse what a handler sent to an output binding (the host deserialises JSON text)."""
    if datum.type == "json":
        return json.loads(datum.value)
    if datum.type == "string":
        return json.loads(datum.value)
    if datum.type == "bytes":
        return json.loads(datum.value.decode("utf-8"))
    if datum.type in ("int", "double"):
        return datum.value
    raise TypeError(f"cannot read JSON from typed data {datum.type!r}")


# --- HTTP ---------------------------------------------------------------------------------------

_BINARY_TYPES = ("application/octet-stream", "multipart/")


class BodyTooLarge(Exception):
    """The request body went past FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (Kestrel's wording)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body too large. The max request body size is {limit} bytes.")
        self.limit = limit


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge without reading past `limit`: refused on the announced length before
    a byte is read, and a chunked body is dropped as soon as it goes over."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit)
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        parts.append(chunk)
    return b"".join(parts)


def request_datum(request: web.Request, route_params: dict[str, str], body: bytes) -> Datum:
    """aiohttp request (and its body, read within the host's limit) → the `http` TypedData the host sends
    the worker."""
    datum = request_head_datum(request, route_params)
    datum.value["body"] = _body_datum(body, request.headers.get("Content-Type", "").lower())
    return datum


def _body_datum(body: bytes, ctype: str) -> Datum:
    if not body:
        body_datum = Datum(type="bytes", value=b"")
    elif ctype.startswith(_BINARY_TYPES):
        body_datum = Datum(type="bytes", value=body)
    else:
        try:
            body_datum = Datum(type="string", value=body.decode("utf-8"))
        except UnicodeDecodeError:
            body_datum = Datum(type="bytes", value=body)
    return body_datum


def request_head_datum(request: web.Request, route_params: dict[str, str]) -> Datum:
    """Everything but the body (which an HTTP streams function reads itself)."""
    query: dict[str, str] = {}
    # The host sends one string per key; repeated keys are joined with commas (StringValues).
    for k, v in parse_qsl(request.query_string, keep_blank_values=True):
        query[k] = f"{query[k]},{v}" if k in query else v
    headers: dict[str, str] = {}
    for k, v in request.headers.items():
        lk = k.lower()
        headers[lk] = f"{headers[lk]}, {v}" if lk in headers else v
    return Datum(type="http", value={
        "method": Datum(type="string", value=request.method),
        "url": Datum(type="string", value=str(request.url)),
        "headers": {k: Datum(type="string", value=v) for k, v in headers.items()},
        "query": {k: Datum(type="string", value=v) for k, v in query.items()},
        "params": {k: Datum(type="string", value=v) for k, v in route_params.items()},
        "body": Datum(type="bytes", value=b""),
    })


def request_binding_data(datum: Datum) -> dict[str, Any]:
    """What `{...}` expressions can see for an HTTP trigger: route values, JSON body properties,
    `query`, `headers` (route values win over body properties)."""
    val = datum.value
    data: dict[str, Any] = {}
    body = val["body"]
    if body.type in ("string", "json") and body.value:
        try:
            parsed = json.loads(body.value)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
            parsed = None
        if isinstance(parsed, dict):
            data.update(parsed)
    data.update({k: v.value for k, v in val["params"].items()})
    data["query"] = {k: v.value for k, v in val["query"].items()}
    data["headers"] = {k: v.value for k, v in val["headers"].items()}
    return data


def response_from_datum(datum: Datum | None) -> web.Response:
    """The `http` output TypedData → aiohttp response, as the host writes it."""
    if datum is None or datum.type is None:
        return web.Response(status=204)
    if datum.type == "string":
        return web.Response(status=200, body=datum.value.encode("utf-8"),
                            headers={"Content-Type": "text/plain; charset=utf-8"})
    if datum.type != "http":
        raise TypeError(f"an HTTP output cannot be {datum.type!r}")
    val = datum.value
    status = int(val["status_code"].value) if val.get("status_code") is not None else 200
    headers: CIMultiDict[str] = CIMultiDict()
    for name, h in (val.get("headers") or {}).items():
        headers.add(name, str(h.value))
    for cookie in val.get("cookies") or []:
        if isinstance(cookie, SimpleCookie):
            for morsel in cookie.values():
                headers.add("Set-Cookie", morsel.OutputString())
    body_d = val.get("body")
    body = b"" if body_d is None or body_d.value is None else body_d.value
    if isinstance(body, str):
        body = body.encode("utf-8")
    # aiohttp computes Content-Length from the body (a handler-set one could lie) and sends no
    # body for HEAD.
    headers.popall("Content-Length", None)
    return web.Response(status=status, body=body, headers=headers)
