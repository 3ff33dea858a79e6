"""A Cosmos DB trigger with a fixed-delay retry policy; the handler records every attempt with the
retry context it was given, and fails for the texts in FAILURES (that many times)."""

import time

import azure.functions as func

app = func.FunctionApp()
SEEN: list[list[str]] = []
ATTEMPTS: list[tuple[float, list[str], int, int]] = []  # (monotonic time, ids, retry_count, max_retry_count)
FAILURES: dict[str, int] = {}


@app.retry(strategy="fixed_delay", max_retry_count="3", delay_interval="00:00:01")
@app.cosmos_db_trigger(arg_name="documents", connection="CosmosDBConnection", database_name="%DB_NAME%",
                       container_name="messages", lease_container_name="leases",
                       create_lease_container_if_not_exists=False, feed_poll_delay=500)
def retried(documents: func.DocumentList, context: func.Context) -> None:
    ids = [d["id"] for d in documents]
    retry = context.retry_context
    ATTEMPTS.append((time.monotonic(), ids, retry.retry_count, retry.max_retry_count))
    for d in documents:
        if FAILURES.get(d["text"], 0) > 0:
            FAILURES[d["text"]] -= 1
            raise RuntimeError(f"injected failure for {d['text']}")
    SEEN.append(ids)
