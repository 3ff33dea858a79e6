"""A sync handler that outlives any patience (no functionTimeout in host.json)."""

import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="sleep", methods=["GET"])
def sleep(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(float(req.params.get("s", "60")))
    return func.HttpResponse("woke up")
