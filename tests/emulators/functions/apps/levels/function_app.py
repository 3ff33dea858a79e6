"""host.json logging.logLevel test app: three functions that log the same lines at several levels."""

import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
log = logging.getLogger("levels_app")


def lines(name: str) -> func.HttpResponse:
    log.debug("%s debug line", name)
    log.info("%s info line", name)
    log.warning("%s warning line", name)
    return func.HttpResponse(name)


# Function names are the categories host.json names, so they are capitalised as in C# apps.
@app.route(route="quiet")
def Quiet(req: func.HttpRequest) -> func.HttpResponse:
    return lines("Quiet")


@app.route(route="loud")
def Loud(req: func.HttpRequest) -> func.HttpResponse:
    return lines("Loud")


@app.route(route="chatty")
async def Chatty(req: func.HttpRequest) -> func.HttpResponse:
    return lines("Chatty")
