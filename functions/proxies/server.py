"""FileServer: the catch-all HTTP function, driven by proxies.json.

Its function name, `z_FileServer`, sorts after every other function's: Azure's host tries routes in the
order of function names and takes the first match, so the catch-all must come last (docs/api.md).

Order of decisions for a request that reached the catch-all: 1. A path that one of the app's own HTTP
functions routes, with a method none of them accepts → 405 + Allow (the host sends such a request here
because the catch-all accepts every method). 2. The most specific proxy whose route matches and whose
methods include the method (405 if only the method differs) → its backend: this app in-process, a file
under www/, or an external URL. 3. Nothing matched → 404 (a JSON error under api/, the 404 page elsewhere)."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import azure.functions as func
from chat.errors import ApiError, json_response, method_not_allowed, not_found
from chat.logs import invocation
from chat.validation import MAX_BODY_BYTES, require_json

from . import config, forward, static
from .config import Proxy, ProxyConfigError
from .registry import HttpFunction, http_functions

log = logging.getLogger("cosmic_chat.fileserver")

FILESERVER = "z_FileServer"
STATIC_SCHEME = "www:"
_SECRET_HEADER_PREFIXES = ("x-ms-client-principal", "x-ms-token-")
# The caller's credentials for THIS app (e.g. App Service authentication's session cookie) must not reach
# another origin; a proxy that needs credentials there sets them with requestOverrides.
_CREDENTIAL_HEADERS = frozenset({"cookie", "authorization"})
_functions: weakref.WeakKeyDictionary[func.FunctionApp, list[HttpFunction]] = weakref.WeakKeyDictionary()


def functions_of(app: func.FunctionApp) -> list[HttpFunction]:
    """Read once per app: the function table does not change while the worker runs."""
    if app not in _functions:
        _functions[app] = http_functions(app, exclude=FILESERVER)
    return _functions[app]


def _allow_list(methods: set[str], head_with_get: bool = True) -> list[str]:
    """Proxies answer HEAD wherever they answer GET; the host routes HEAD to a function only if it lists
    HEAD."""
    if head_with_get and "GET" in methods:
        methods = methods | {"HEAD"}
    return sorted(methods)


def _is_api(path: str) -> bool:
    return path.lower() == "api" or path.lower().startswith("api/")


def _not_found(path: str, method: str) -> func.HttpResponse:
    return not_found().response() if _is_api(path) else static.not_found_page(static.www_root(), method)


class _Lookup:
    """Values for `{...}` placeholders: route parameters and `request.*` (and `backend.response.*` later)."""

    def __init__(self, req: func.HttpRequest, route_values: Mapping[str, str], encode: bool = False) -> None:
        self.req = req
        self.route_values = route_values
        self.encode = encode
        self.backend: func.HttpResponse | None = None

    def __call__(self, key: str) -> str | None:
        if key in self.route_values:
            value = self.route_values[key]
            return quote(value, safe="/") if self.encode else value
        lower = key.lower()
        if lower == "request.method":
            return self.req.method
        if lower.startswith("request.headers."):
            return self.req.headers.get(key[len("request.headers.") :])
        if lower.startswith("request.querystring."):
            return self.req.params.get(key[len("request.querystring.") :])
        if self.backend is not None:
            if lower == "backend.response.statuscode":
                return str(self.backend.status_code)
            if lower.startswith("backend.response.headers."):
                return self.backend.headers.get(key[len("backend.response.headers.") :])
        return None


def _is_this_app(netloc: str) -> bool:
    host = netloc.split("@")[-1].lower()
    this = os.environ.get("WEBSITE_HOSTNAME", "").lower()
    return (
        host in ("%website_hostname%", "localhost")
        or host.startswith("localhost:")
        or (bool(this) and host == this)
    )


def _mapped_body(req: func.HttpRequest, template: Any, lookup: _Lookup) -> bytes:
    """`backend.request.body`: a string is a template for the raw body; an object is a JSON template in which
    a value that is exactly `{request.body.<field>}` takes that field's JSON value (omitted when absent),
    so types survive and no text can break out of its string."""
    if isinstance(template, str):
        return config.expand(template, lookup).encode("utf-8")
    # A JSON template reads a JSON body, declared as such: a cross-site form post is the target's 415, not
    # a 400 from the parse below (chat/validation.py require_json).
    require_json(req.headers)
    raw = req.get_body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes", "body")
    try:
        source = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ApiError(400, "invalid_json", "the body must be a JSON object in UTF-8", "body") from None
    if not isinstance(source, dict):
        raise ApiError(400, "not_an_object", "the body must be a JSON object", "body")
    out: dict[str, Any] = {}
    for key, value in template.items():
        if isinstance(value, str) and value.startswith("{request.body.") and value.endswith("}"):
            field = value[len("{request.body.") : -1]
            if field in source:
                out[key] = source[field]
        elif isinstance(value, str):
            out[key] = config.expand(value, lookup)
        else:
            out[key] = value
    try:
        return json.dumps(out, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escape it, so the target names the field that holds it
        return json.dumps(out).encode("ascii")


def _request_overrides(
    req: func.HttpRequest, proxy: Proxy, lookup: _Lookup
) -> tuple[str, dict[str, str], dict[str, str], bytes]:
    method = req.method
    headers = dict(req.headers.items())
    params = dict(req.params.items())
    body = req.get_body()
    for key, value in proxy.request_overrides.items():
        if key == "backend.request.body":
            body = _mapped_body(req, value, lookup)
            continue
        text = config.expand(config.app_settings(str(value)), lookup)
        if key == "backend.request.method":
            method = text.upper()
        elif key.startswith("backend.request.headers."):
            name = key[len("backend.request.headers.") :]
            headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
            if text:
                headers[name] = text
        elif key.startswith("backend.request.querystring."):
            name = key[len("backend.request.querystring.") :]
            params.pop(name, None)
            if text:
                params[name] = text
    return method, headers, params, body


def _apply_response_overrides(
    response: func.HttpResponse, proxy: Proxy, lookup: _Lookup
) -> func.HttpResponse:
    """`response.*` overrides: status, headers and body of the backend's answer, with placeholders."""
    if not proxy.response_overrides:
        return response
    lookup.backend = response
    status = response.status_code
    headers = dict(response.headers.items())
    body: bytes | None = None
    for key, value in proxy.response_overrides.items():
        if key == "response.body":
            body = (
                json.dumps(value, ensure_ascii=False)
                if not isinstance(value, str)
                else config.expand(config.app_settings(value), lookup)
            ).encode("utf-8")
            continue
        text = config.expand(config.app_settings(str(value)), lookup)
        if key == "response.statusCode":
            if not text.isdigit() or not 100 <= int(text) <= 599:
                raise ProxyConfigError(f"proxy {proxy.name}: response.statusCode {text!r} is not a status")
            status = int(text)
        elif key.startswith("response.headers."):
            name = key[len("response.headers.") :]
            headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
            if text:
                headers[name] = text
        # response.statusReason: the Python worker cannot set a reason phrase; accepted and ignored.
    if body is None:
        body = response.get_body()
    return func.HttpResponse(
        body,
        status_code=status,
        headers=headers,
        mimetype=response.mimetype,
        charset=response.charset,
    )


async def _in_process(
    app: func.FunctionApp,
    req: func.HttpRequest,
    target: str,
    method: str,
    headers: dict[str, str],
    params: dict[str, str],
    body: bytes,
    bindings: Mapping[str, Any],
) -> func.HttpResponse:
    parts = urlsplit(target)
    path = parts.path.lstrip("/")
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        params.setdefault(key, value)
    for fn in functions_of(app):
        values = fn.route.match(path)
        if values is None or not fn.allows(method):
            continue
        missing = [arg for arg in fn.binding_args if arg not in bindings]
        if missing:
            # An input binding (e.g. negotiate's signalRConnectionInfo) would make FileServer resolve it on
            # every request, static files included: such targets are called over HTTP instead.
            return await _loopback(req, f"/{path}", method, headers, params, body)
        original = urlsplit(req.url)
        url = urlunsplit((original.scheme, original.netloc, "/" + path, urlencode(params), ""))
        inner = func.HttpRequest(method, url, headers=headers, params=params, route_params=values, body=body)
        result = fn.handler(**{fn.trigger_arg: inner}, **{arg: bindings[arg] for arg in fn.binding_args})
        if inspect.isawaitable(result):
            result = await result
        return result
    raise ProxyConfigError(f"no function of this app serves {method} /{path}")


def self_origin(req: func.HttpRequest) -> str:
    """Where this app answers: `WEBSITE_HOSTNAME` (https, or http on a loopback address as the local host
    sets it), else the origin the request came to. `WEBSITE_HOSTNAME` comes first: the request's own URL
    names whatever address the front end reached the host on, not necessarily the public one."""
    host = os.environ.get("WEBSITE_HOSTNAME", "")
    if not host:
        parts = urlsplit(req.url)
        return f"{parts.scheme}://{parts.netloc}"
    name = host.rsplit(":", 1)[0].strip("[]").lower()
    return f"{'http' if name in ('localhost', '127.0.0.1', '::1') else 'https'}://{host}"


async def _loopback(
    req: func.HttpRequest,
    path: str,
    method: str,
    headers: dict[str, str],
    params: dict[str, str],
    body: bytes,
) -> func.HttpResponse:
    """A request to one of this app's own functions, over HTTP. The caller's headers go along, credentials
    included: they are for this very app (e.g. App Service authentication's session)."""
    scheme, netloc = urlsplit(self_origin(req))[:2]
    url = urlunsplit((scheme, netloc, path, urlencode(params), ""))
    return await _forward(method, url, headers, body, pooled=False)


async def _forward(
    method: str, url: str, headers: dict[str, str], body: bytes, pooled: bool = True
) -> func.HttpResponse:
    try:
        answer = await forward.fetch(method, url, headers, body, pooled=pooled)
    except forward.ForwardError as error:
        return ApiError(error.status, error.code, error.message).response()
    return func.HttpResponse(answer.body, status_code=answer.status, headers=answer.headers)


def _static(proxy: Proxy, target: str, method: str, req: func.HttpRequest) -> func.HttpResponse:
    relative = target[len(STATIC_SCHEME) :].lstrip("/")
    template_path = (proxy.backend_uri or "")[len(STATIC_SCHEME) :]
    # Parts chosen by the request may not reach dependencies or hidden files; a literal target in
    # proxies.json may (that is how /lib/signalr.min.js exposes exactly one file of node_modules).
    segments = relative.split("/")
    if ("node_modules" in segments and "node_modules" not in template_path) or any(
        s.startswith(".") and s not in template_path for s in segments
    ):
        return _not_found(req.route_params.get("path") or "", method)
    path = static.resolve(static.www_root(), relative)
    if path is None:
        return _not_found(req.route_params.get("path") or "", method)
    return static.file_response(path, method, req.headers, req.params)


def _external_headers(headers: Mapping[str, str], proxy: Proxy) -> dict[str, str]:
    """What an external backend may see: never the platform's identity headers, and the caller's cookies and
    Authorization only when proxies.json sets them explicitly."""
    prefix = "backend.request.headers."
    explicit = {k[len(prefix) :].lower() for k in proxy.request_overrides if k.startswith(prefix)}
    return {
        k: v
        for k, v in headers.items()
        if not k.lower().startswith(_SECRET_HEADER_PREFIXES)
        and (k.lower() not in _CREDENTIAL_HEADERS or k.lower() in explicit)
    }


async def _backend(
    app: func.FunctionApp,
    req: func.HttpRequest,
    proxy: Proxy,
    values: Mapping[str, str],
    bindings: Mapping[str, Any],
) -> func.HttpResponse:
    raw = proxy.backend_uri
    if raw is None:
        return func.HttpResponse(status_code=200)
    if raw.startswith(STATIC_SCHEME):
        target = config.expand(config.app_settings(raw), _Lookup(req, values))
        if req.method not in ("GET", "HEAD"):
            return method_not_allowed(["GET", "HEAD"]).response()
        # Disk work (resolve, stat, read on a cache miss) runs off the event loop.
        return await asyncio.to_thread(_static, proxy, target, req.method, req)
    lookup = _Lookup(req, values)
    method, headers, params, body = _request_overrides(req, proxy, lookup)
    if _is_this_app(urlsplit(raw).netloc):
        target = config.expand(raw, lookup)
        target = urlunsplit(("", "", urlsplit(target).path, urlsplit(target).query, ""))
        try:
            return await _in_process(app, req, target, method, headers, params, body, bindings)
        except ProxyConfigError:
            # A placeholder the request left empty (e.g. /api/config without ?userId=) names no function: the
            # request's 404, as Azure's host would answer the forwarded call, not a configuration error.
            if config.has_empty_placeholder(raw, lookup):
                return not_found().response()
            raise
    url = config.expand(config.app_settings(raw), _Lookup(req, values, encode=True))
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    headers = _external_headers(headers, proxy)
    headers["X-Forwarded-Host"] = urlsplit(req.url).netloc
    return await _forward(method, url, headers, body)


@invocation(FILESERVER)
async def serve(
    app: func.FunctionApp,
    req: func.HttpRequest,
    bindings: Mapping[str, Any],
    proxies: list[Proxy] | None = None,
) -> func.HttpResponse:
    path = req.route_params.get("path") or ""
    method = req.method
    allowed: set[str] = set()
    routed = False
    for fn in functions_of(app):
        if fn.route.match(path) is not None:
            routed = True
            allowed |= fn.methods
    if routed and method not in allowed:
        return method_not_allowed(_allow_list(allowed, head_with_get=False)).response()
    try:
        table = config.load() if proxies is None else proxies
        matching = [(p, v) for p in table if (v := p.route.match(path)) is not None]
        # The most specific matching route names the resource; a less specific one (the static catch-all) must
        # not turn "GET /api/save" into a 404 for a file: the resource exists, the method is wrong (405).
        matching = [(p, v) for p, v in matching if p.route.precedence() == matching[0][0].route.precedence()]
        for proxy, values in matching:
            if proxy.allows(method):
                lookup = _Lookup(req, values)
                return _apply_response_overrides(
                    await _backend(app, req, proxy, values, bindings), proxy, lookup
                )
        if matching:
            methods: set[str] = set()
            for proxy, _ in matching:
                methods |= set(proxy.methods or ())
            return method_not_allowed(_allow_list(methods)).response()
        return await asyncio.to_thread(_not_found, path, method)
    except ApiError as error:
        return error.response()
    except ProxyConfigError as error:
        log.error("FileServer configuration error: %s", error)
        return json_response(
            {"error": {"code": "proxy_configuration", "message": str(error), "field": None}}, 500
        )
