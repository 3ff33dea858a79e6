"""A test app for the local host: route order, conversion, sync/async, errors."""

import asyncio
import json
import threading
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def reply(name: str, req: func.HttpRequest) -> func.HttpResponse:
    body = {"function": name, "route_params": dict(req.route_params)}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="items/new", methods=["GET"])
def items_literal(req: func.HttpRequest) -> func.HttpResponse:
    return reply("literal", req)


@app.route(route="items/{name}", methods=["GET"])
def items_param(req: func.HttpRequest) -> func.HttpResponse:
    return reply("param", req)


@app.route(route="items/{id:int}", methods=["GET"])
def items_int(req: func.HttpRequest) -> func.HttpResponse:
    return reply("int", req)


@app.route(route="codes/{code:regex(^[a-z]{{3}}$)}", methods=["GET"])
def codes(req: func.HttpRequest) -> func.HttpResponse:
    return reply("regex", req)


@app.route(route="files/{name}.{ext}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return reply("complex", req)


@app.route(route="opt/{x?}", methods=["GET"])
def optional(req: func.HttpRequest) -> func.HttpResponse:
    return reply("optional", req)


# Named to sort last: Azure's host tries routes in the order of function names, first match wins.
@app.function_name("zz_catch_all")
@app.route(route="{*path}", methods=["GET"])
def catch_all(req: func.HttpRequest) -> func.HttpResponse:
    return reply("catch-all", req)


# Under Azure's rule `order_a_param` (sorts first) takes /order/literal; ASP.NET precedence alone would have
# picked the literal. The host warns at start-up that order_b_literal is never reached.
@app.route(route="order/{x}", methods=["GET"])
def order_a_param(req: func.HttpRequest) -> func.HttpResponse:
    return reply("order-param", req)


@app.route(route="order/literal", methods=["GET"])
def order_b_literal(req: func.HttpRequest) -> func.HttpResponse:
    return reply("order-literal", req)


# The same template for another method is no conflict: a POST falls through order_a_param's GET constraint.
@app.route(route="order/{y}", methods=["POST"])
def order_c_post(req: func.HttpRequest) -> func.HttpResponse:
    return reply("order-post", req)


@app.route(route="only-post", methods=["POST"])
def only_post(req: func.HttpRequest) -> func.HttpResponse:
    return reply("only-post", req)


@app.route(route="echo/{thing}", methods=["POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    try:
        parsed = req.get_json()
    except ValueError as e:
        parsed = f"ValueError: {e}"
    body = {
        "type": type(req).__name__,
        "method": req.method,
        "url": req.url,
        "header": req.headers.get("X-Test"),
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "body": req.get_body().decode("utf-8", "replace"),
        "json": parsed,
    }
    headers = {"X-Echo": "yes", "Set-Cookie": "a=1; Path=/"}
    return func.HttpResponse(json.dumps(body), status_code=201, headers=headers, mimetype="application/json")


@app.route(route="text", methods=["GET"])
def text(req: func.HttpRequest) -> str:
    return "plain ünïcode"


@app.route(route="sync-slow", methods=["GET"])
def sync_slow(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(float(req.params.get("s", "0.5")))
    return func.HttpResponse(threading.current_thread().name)


@app.route(route="async-fast", methods=["GET"])
async def async_fast(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse(threading.current_thread().name)


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret internal detail")


@app.route(route="negotiate-user", methods=["POST"])
@app.generic_input_binding(arg_name="info", type="signalRConnectionInfo", hub_name="chat",
                           connection_string_setting="AzureSignalRConnectionString",
                           user_id="{headers.x-ms-client-principal-id}")
def negotiate_user(req: func.HttpRequest, info: str) -> func.HttpResponse:
    return func.HttpResponse(info, mimetype="application/json")


@app.route(route="env", methods=["GET"])
def env(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    import os

    return func.HttpResponse(json.dumps({"greeting": os.environ.get("GREETING"),
                                         "function": context.function_name}))
