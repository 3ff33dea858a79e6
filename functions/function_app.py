"""Cosmic Chat's Function App, read as a table of contents: each function is its declaration plus a call into
`chat` or `proxies`. The contract is documented in docs/api.md and functions/openapi.yaml.

Every HTTP function uses the worker's classic `azure.functions` types: the host stores the output bindings
and only then sends the response, so a 201 means the message is stored (docs/parity.md, "HTTP streams").
Azure's host tries HTTP routes in the order of function names and the first match wins, so the catch-all is
named to sort last (`z_FileServer`, docs/api.md "Route order").

Every function is `async def`: the handlers only validate and shape (no blocking I/O), and the worker runs a
sync function in its thread pool, a thread hop per request for nothing."""

import azure.functions as func
from chat import handlers
from chat.settings import HUB
from proxies import server
from proxies.registry import FunctionApp

COSMOS = {"connection": "CosmosDBConnection", "database_name": "chat", "container_name": "messages"}
SIGNALR = {"hub_name": HUB, "connection_string_setting": "AzureSignalRConnectionString"}
# Binding expressions only (the extension sends each as a SQL parameter). Each query may name only route
# values: an expression naming an absent query value fails the invocation (docs/api.md "History").
HISTORY_QUERY = (
    "SELECT TOP 200 c.id, c.room, c.user, c.authorId, c.text, c.createdAt FROM c "
    "WHERE c.room = {room} ORDER BY c.createdAt DESC, c.id DESC"
)
HISTORY_AFTER_QUERY = (
    "SELECT TOP 200 c.id, c.room, c.user, c.authorId, c.text, c.createdAt FROM c "
    "WHERE c.room = {room} AND c.createdAt > {after} ORDER BY c.createdAt, c.id"
)

app = FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


# No Cosmos DB output binding: it only upserts, and a write must never replace another author's message.
# SaveChat creates if absent with the SDK, under the same setting (docs/api.md "Why SaveChat writes with
# the SDK").
@app.function_name("SaveChat")
@app.route(route="api/rooms/{room}/messages", methods=["POST"])
async def save_chat(req: func.HttpRequest) -> func.HttpResponse:
    return await handlers.save_chat(req)


@app.function_name("IssueIdentity")
@app.route(route="api/identities", methods=["POST"])
async def issue_identity(req: func.HttpRequest) -> func.HttpResponse:
    return await handlers.issue_identity(req)


@app.function_name("History")
@app.route(route="api/rooms/{room}/messages", methods=["GET"])
@app.cosmos_db_input(arg_name="documents", sql_query=HISTORY_QUERY, partition_key="{room}", **COSMOS)
async def history(req: func.HttpRequest, documents: func.DocumentList) -> func.HttpResponse:
    return handlers.history(req, documents)


@app.function_name("HistoryAfter")
@app.route(route="api/rooms/{room}/messages/after/{after}", methods=["GET"])
@app.cosmos_db_input(arg_name="documents", sql_query=HISTORY_AFTER_QUERY, partition_key="{room}", **COSMOS)
async def history_after(req: func.HttpRequest, documents: func.DocumentList) -> func.HttpResponse:
    return handlers.history_after(req, documents)


# The SignalR user id comes from the route, always present (a header or query value that is absent fails
# the invocation with a 500); the handler hands the connection out only to the identity it names.
@app.function_name("SignalRConfiguration")
@app.route(route="api/negotiate/{userId}", methods=["POST"])
@app.generic_input_binding(
    arg_name="connectionInfo", type="signalRConnectionInfo", user_id="{userId}", **SIGNALR
)
async def negotiate(req: func.HttpRequest, connectionInfo: str) -> func.HttpResponse:
    return await handlers.negotiate(req, connectionInfo)


@app.function_name("JoinRoom")
@app.route(route="api/rooms/{room}/join", methods=["POST"])
@app.generic_output_binding(arg_name="actions", type="signalR", **SIGNALR)
async def join_room(req: func.HttpRequest, actions: func.Out[str]) -> func.HttpResponse:
    return await handlers.join_room(req, actions)


@app.function_name("LeaveRoom")
@app.route(route="api/rooms/{room}/leave", methods=["POST"])
@app.generic_output_binding(arg_name="actions", type="signalR", **SIGNALR)
async def leave_room(req: func.HttpRequest, actions: func.Out[str]) -> func.HttpResponse:
    return await handlers.leave_room(req, actions)


# The trigger does not retry a failed batch by itself; this policy does (same batch, 11 attempts in
# ~2.5 minutes), then the checkpoint moves on and the batch is only in History (docs/reliability.md
# "Delivery contract"). start_from_beginning applies only to a lease without a checkpoint, i.e. at the
# stack's first start (docs/api.md "FeedToSignalR").
@app.function_name("FeedToSignalR")
@app.retry(
    strategy="exponential_backoff",
    max_retry_count="10",
    minimum_interval="00:00:01",
    maximum_interval="00:00:30",
)
@app.cosmos_db_trigger(
    arg_name="documents",
    lease_container_name="leases",
    create_lease_container_if_not_exists=False,
    feed_poll_delay=500,
    start_from_beginning=True,
    **COSMOS,
)
@app.generic_output_binding(arg_name="signalr", type="signalR", **SIGNALR)
async def feed_to_signalr(
    documents: func.DocumentList, signalr: func.Out[str], context: func.Context
) -> None:
    # CPU only (one JSON array): no thread hop needed
    handlers.feed_to_signalr(documents, signalr, context.retry_context)


# The catch-all, named to come after every other function in the host's route order (by name, ignore case;
# "_" sorts after the letters). It declares the output bindings of its in-process proxy targets, under the
# same names, and passes them on; left unset they write nothing. A target that needs an input binding is
# called over HTTP instead, so that no static request pays for one (see docs/api.md "proxies.json").
@app.function_name("z_FileServer")
@app.route(route="{*path}")
@app.generic_output_binding(arg_name="actions", type="signalR", **SIGNALR)
async def file_server(req: func.HttpRequest, actions: func.Out[str]) -> func.HttpResponse:
    return await server.serve(app, req, {"actions": actions})
