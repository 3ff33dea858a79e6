"""`python -m bench.authorship_cost`: what authorship costs per message, measured side by side in one run.

SaveChat's handler is called as the worker calls it, against the Cosmos DB emulator over HTTP through the
azure-cosmos SDK (what it does in Azure), in three variants interleaved message by message so that the
machine's drift hits all of them alike:

- `create`: identity check + create-if-absent (`chat/saving.py`), the rate limiter switched off;
- `create+limit`: the same plus the per-identity rate limit (one conditional patch, `chat/limits.py`);
- `retry`: the same message again (409 on create, then a point read: the idempotent answer).

Reports the median and p90 handler time of each, the ratios to `create`, and the request charges the
emulator reports per operation (the emulator's charges are not Azure's: see docs/api.md "Rate limits" for the
service's figures). Writes bench/results-authorship.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results-authorship.json"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(count: int) -> dict[str, Any]:
    import os

    sys.path.insert(0, str(ROOT / "functions"))
    import azure.functions as func
    from chat import cosmos, handlers, limits

    from emulators.__main__ import ensure_containers
    from emulators.cosmos import WELL_KNOWN_KEY
    from emulators.cosmos import start as start_cosmos

    emulator = await start_cosmos(port=0)
    await ensure_containers(emulator.url, WELL_KNOWN_KEY)
    os.environ["CosmosDBConnection"] = emulator.connection_string
    try:
        answer = await handlers.issue_identity(func.HttpRequest("POST", "/", body=b""))
        issued = json.loads(answer.get_body())
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {issued['token']}"}
        real_take = limits.take
        os.environ["CHAT_POST_LIMIT"] = "999999/3600s"  # counted, never refused

        async def no_limit(*_: Any, **__: Any) -> None:
            return None

        async def post(body: dict[str, str]) -> tuple[float, int]:
            req = func.HttpRequest(
                "POST",
                "https://chat.example/api/rooms/bench/messages",
                headers=headers,
                route_params={"room": "bench"},
                body=json.dumps(body).encode(),
            )
            start = time.perf_counter()
            response = await handlers.save_chat(req)
            return (time.perf_counter() - start) * 1000, response.status_code

        times: dict[str, list[float]] = {"create": [], "create+limit": [], "retry": []}
        for i in range(count + 20):  # the first 20 warm the client and the store
            body = {"id": str(uuid.uuid4()), "user": "bench", "text": f"message {i}"}
            limits.take = no_limit  # type: ignore[assignment]
            plain, status_a = await post(body)
            limits.take = real_take  # type: ignore[assignment]
            limited, status_b = await post({**body, "id": str(uuid.uuid4())})
            again, status_c = await post(body)
            assert (status_a, status_b, status_c) == (201, 201, 200), (status_a, status_b, status_c)
            if i >= 20:
                times["create"].append(plain)
                times["create+limit"].append(limited)
                times["retry"].append(again)
        charges = await _charges(emulator.connection_string)
    finally:
        await cosmos.close()
        await emulator.close()
    base = statistics.median(times["create"])
    return {
        "count": count,
        "median_ms": {k: round(statistics.median(v), 3) for k, v in times.items()},
        "p90_ms": {k: round(_percentile(v, 0.9), 3) for k, v in times.items()},
        "ratio_to_create": {k: round(statistics.median(v) / base, 2) for k, v in times.items()},
        "emulator_request_charge": charges,
    }


async def _charges(connection_string: str) -> dict[str, float]:
    """The `x-ms-request-charge` of each operation SaveChat and the limiter make, as the emulator reports
    it."""
    from azure.cosmos.aio import CosmosClient

    seen: dict[str, float] = {}

    def charge(headers: Any, *_: Any) -> None:
        seen["last"] = float(headers.get("x-ms-request-charge", "nan"))

    async with CosmosClient.from_connection_string(connection_string) as client:
        db = client.get_database_client("chat")
        messages, control = db.get_container_client("messages"), db.get_container_client("control")
        doc = {"id": str(uuid.uuid4()), "room": "bench", "user": "u", "authorId": "A" * 22, "text": "x" * 100,
               "createdAt": "2026-12-03T00:00:00.000Z"}
        out: dict[str, float] = {}
        await messages.create_item(doc, response_hook=charge)
        out["create message"] = seen["last"]
        await messages.read_item(doc["id"], partition_key="bench", response_hook=charge)
        out["read message (retry)"] = seen["last"]
        await control.create_item({"id": "w", "n": 1, "ttl": 40}, response_hook=charge)
        out["create window"] = seen["last"]
        await control.patch_item("w", "w", [{"op": "incr", "path": "/n", "value": 1}],
                                 filter_predicate="FROM c WHERE c.n < 20", response_hook=charge)
        out["patch window"] = seen["last"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.authorship_cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--count", type=int, default=500, help="messages per variant (default 500)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.count))
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| variant | median ms | p90 ms | × create |")
    print("|---|---|---|---|")
    for name in result["median_ms"]:
        print(f"| {name} | {result['median_ms'][name]} | {result['p90_ms'][name]} | "
              f"{result['ratio_to_create'][name]} |")
    print("emulator request charges:", result["emulator_request_charge"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
