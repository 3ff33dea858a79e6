import azure.functions as func

app = func.FunctionApp()


@app.route(route="q")
@app.queue_output(arg_name="msg", queue_name="outq", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, msg: func.Out[str]) -> str:
    return "queued"
