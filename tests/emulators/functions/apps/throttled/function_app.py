import asyncio

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="wait", methods=["GET"])
async def wait(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0.4)
    return func.HttpResponse("done")
