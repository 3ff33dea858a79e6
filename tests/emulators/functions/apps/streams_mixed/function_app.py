"""One function on HTTP streams and one on func.HttpRequest: the worker cannot serve both."""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="new")
async def new_style(req: Request) -> Response:
    return Response("new")


@app.route(route="old")
def old_style(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("old")
