"""A test app exercising the Cosmos DB and SignalR bindings and the Cosmos DB trigger."""

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
DB = {"connection": "CosmosDBConnection", "database_name": "%DB_NAME%", "container_name": "messages"}
HUB = {"hub_name": "chat", "connection_string_setting": "AzureSignalRConnectionString"}
# Batches the trigger saw, and texts that must fail a given number of times first.
SEEN: list[list[str]] = []
FAILURES: dict[str, int] = {}


@app.route(route="save/{room}", methods=["POST"])
@app.cosmos_db_output(arg_name="doc", **DB)
def save(req: func.HttpRequest, doc: func.Out[func.Document]) -> func.HttpResponse:
    body = req.get_json()
    body["room"] = req.route_params["room"]
    doc.set(func.Document.from_dict(body))
    return func.HttpResponse(json.dumps(body), status_code=201, mimetype="application/json")


@app.route(route="save-many/{room}", methods=["POST"])
@app.cosmos_db_output(arg_name="docs", **DB)
def save_many(req: func.HttpRequest, docs: func.Out[func.DocumentList]) -> func.HttpResponse:
    items = [dict(d, room=req.route_params["room"]) for d in req.get_json()]
    docs.set(func.DocumentList(func.Document.from_dict(d) for d in items))
    return func.HttpResponse(status_code=201)


@app.route(route="list/{room}", methods=["GET"])
@app.cosmos_db_input(arg_name="docs", partition_key="{room}",
                     sql_query="SELECT c.id, c.text FROM c WHERE c.room = {room} ORDER BY c.id", **DB)
def list_room(req: func.HttpRequest, docs: func.DocumentList) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"type": type(docs).__name__, "items": [dict(d) for d in docs]}))


@app.route(route="doc/{room}/{id}", methods=["GET"])
@app.cosmos_db_input(arg_name="docs", partition_key="{room}", id="{id}", **DB)
def one(req: func.HttpRequest, docs: func.DocumentList) -> func.HttpResponse:
    if not docs:
        return func.HttpResponse(status_code=404)
    return func.HttpResponse(json.dumps({"text": docs[0]["text"], "count": len(docs)}))


@app.route(route="negotiate", methods=["POST"])
@app.generic_input_binding(arg_name="info", type="signalRConnectionInfo", user_id="{query.user}", **HUB)
def negotiate(req: func.HttpRequest, info: str) -> func.HttpResponse:
    assert isinstance(info, str)
    return func.HttpResponse(info, mimetype="application/json")


@app.route(route="negotiate-anonymous", methods=["POST"])
@app.generic_input_binding(arg_name="info", type="signalRConnectionInfo", user_id="{rand-guid}", **HUB)
def negotiate_anonymous(req: func.HttpRequest, info: str) -> func.HttpResponse:
    return func.HttpResponse(info, mimetype="application/json")


@app.route(route="join/{room}", methods=["POST"])
@app.generic_output_binding(arg_name="actions", type="signalR", **HUB)
def join(req: func.HttpRequest, actions: func.Out[str]) -> func.HttpResponse:
    conn = req.get_json()["connectionId"]
    actions.set(json.dumps({"action": "add", "groupName": req.route_params["room"], "connectionId": conn}))
    return func.HttpResponse(status_code=202)


@app.route(route="signal", methods=["POST"])
@app.generic_output_binding(arg_name="out", type="signalR", **HUB)
def signal(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    """Sends the request body (a message or group action, or a JSON array of them) as is."""
    out.set(req.get_body().decode("utf-8"))
    return func.HttpResponse(status_code=202)


@app.route(route="bad-action", methods=["POST"])
@app.generic_output_binding(arg_name="actions", type="signalR", **HUB)
def bad_action(req: func.HttpRequest, actions: func.Out[str]) -> func.HttpResponse:
    actions.set(json.dumps({"action": "add", "groupName": "g"}))
    return func.HttpResponse(status_code=202)


@app.cosmos_db_trigger(arg_name="documents", lease_container_name="leases",
                       create_lease_container_if_not_exists=False, feed_poll_delay=500,
                       max_items_per_invocation=3, **DB)
@app.generic_output_binding(arg_name="out", type="signalR", **HUB)
def feed(documents: func.DocumentList, out: func.Out[str]) -> None:
    texts = [d["text"] for d in documents]
    for t in texts:
        if FAILURES.get(t, 0) > 0:
            FAILURES[t] -= 1
            raise RuntimeError(f"injected failure for {t}")
    SEEN.append(texts)
    out.set(json.dumps([{"target": "newMessage", "groupName": d["room"],
                         "arguments": [{"id": d["id"], "text": d["text"]}]} for d in documents]))
