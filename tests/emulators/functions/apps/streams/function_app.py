"""HTTP streams test app: every HTTP function takes the FastAPI types of the http-fastapi extension."""

import asyncio

import azure.functions as func
from azurefunctions.extensions.http.fastapi import JSONResponse, Request, Response, StreamingResponse

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
GATE = asyncio.Event()  # the test opens it once it has read the first chunk


@app.route(route="drip/{name}", methods=["GET", "HEAD"])
async def drip(req: Request) -> StreamingResponse:
    name = req.path_params["name"]

    async def body():
        yield f"hello {name}\n".encode()
        await GATE.wait()
        yield b"bye\n"

    headers = {"X-Query": req.query_params.get("q", "").encode("unicode_escape").decode("ascii")}
    return StreamingResponse(body(), media_type="text/plain", headers=headers)


@app.route(route="upload", methods=["POST"])
async def upload(req: Request) -> JSONResponse:
    size = chunks = 0
    async for chunk in req.stream():
        size += len(chunk)
        chunks += 1 if chunk else 0
    return JSONResponse({"bytes": size, "chunks": chunks})


@app.route(route="broken", methods=["GET"])
async def broken(req: Request) -> Response:
    return "not a response"  # type: ignore[return-value]


@app.route(route="breaks-off", methods=["GET"])
async def breaks_off(req: Request) -> StreamingResponse:
    async def body():
        yield b"part"
        raise RuntimeError("the backend went away")

    return StreamingResponse(body(), media_type="text/plain")


# An output binding in streams mode: the worker hands the response over before it returns the outputs.
@app.route(route="announce", methods=["POST"])
@app.generic_output_binding(arg_name="signalr", type="signalR", hub_name="chat",
                            connection_string_setting="AzureSignalRConnectionString")
async def announce(req: Request, signalr: func.Out[str]) -> JSONResponse:
    signalr.set('{"target": "said", "arguments": ["hi"]}')
    return JSONResponse({"announced": True}, status_code=201)
