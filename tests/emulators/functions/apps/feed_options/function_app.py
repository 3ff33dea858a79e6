"""A Cosmos DB trigger with the options the chat does not use: start from the beginning, a long
idle poll (so only the change notification can wake it quickly), small batches, a lease prefix,
short lease intervals."""

import azure.functions as func

app = func.FunctionApp()
SEEN: list[list[str]] = []


@app.cosmos_db_trigger(arg_name="documents", connection="CosmosDBConnection", database_name="%DB_NAME%",
                       container_name="messages", lease_container_name="leases",
                       lease_container_prefix="opts-", create_lease_container_if_not_exists=False,
                       start_from_beginning=True, feed_poll_delay=60000, max_items_per_invocation=2,
                       lease_expiration_interval=3000, lease_renew_interval=1000)
def feed_options(documents: func.DocumentList) -> None:
    SEEN.append([d["id"] for d in documents])
