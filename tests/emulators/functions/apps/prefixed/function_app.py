import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(methods=["GET"])
def Hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("hello %NOT_A_SETTING% " + req.params.get("name", ""))


@app.route(route="greet/{who}", methods=["GET"])
@app.generic_input_binding(arg_name="info", type="signalRConnectionInfo", hub_name="%HUB_NAME%",
                           connection_string_setting="AzureSignalRConnectionString")
def greet(req: func.HttpRequest, info: str) -> func.HttpResponse:
    return func.HttpResponse(info)
