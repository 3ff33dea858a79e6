"""HTTP requests per chat message, counted from the stack's own log.

`python -m emulators --verbose` logs one line per request for all three servers; with 10 clients and a
slow steady rate (every post its own change-feed batch) the lines of one phase, grouped by what they
are, divided by the posts, give the cost of one message in hops.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from bench.e2e_load import Phase, Server, Workers

ROOMS = [f"room-{i}" for i in range(10)]
LINE = re.compile(r" (emulators\.\w+) \w+ (.*)$")  # the chat's own lines are not requests


def _shape(text: str) -> str:
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", text)
    text = re.sub(r"\d+(\.\d+)? ms", "N ms", text)
    text = re.sub(r"room-\d+", "{room}", text)
    text = re.sub(r"\(\d+ docs\)", "(n docs)", text)
    return re.sub(r"\d+ documents -> \d+ messages", "n documents -> n messages", text)


async def per_message(posts: int = 20, rate: float = 2.0) -> dict[str, object]:
    server = Server("stack")
    server.cmd.append("--verbose")
    server.start()
    workers = Workers(server.base, 10, ROOMS)
    try:
        await workers.start()
        await Phase(server, workers, 5, 2).run()
        start = Path(server.log.name).stat().st_size
        r = await Phase(server, workers, rate, posts / rate).run()
        with open(server.log.name, encoding="utf-8", errors="replace") as f:
            f.seek(start)
            text = f.read()
    finally:
        await workers.close()
        server.stop()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        m = LINE.search(line)
        if m and (" -> " in m.group(2) or " → " in m.group(2)):
            counts[f"{m.group(1)} {_shape(m.group(2))[:120]}"] += 1
    requests = {k: round(n / r.posted, 2) for k, n in counts.most_common()}
    return {
        "posts": r.posted,
        "per_message": requests,
        "total_per_message": round(sum(counts.values()) / r.posted, 2),
    }
