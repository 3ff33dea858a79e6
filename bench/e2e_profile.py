"""Where the stack's time goes: py-spy on the stack process during a load phase, and the host's own
one-line-per-invocation log (SaveChat and FeedToSignalR durations, batch sizes).

py-spy samples every thread of the stack's process and of its children (`--subprocesses`: the SignalR
emulator runs in a child of `python -m emulators`); the figures here are for each process's event-loop
thread (`MainThread`): the top level for the main process (the Cosmos DB emulator and the Functions
host), `children` for the others. "Inclusive" = share of that thread's samples in which the function
is on the stack; "self" = share in which it is the innermost frame.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PY_SPY = Path(sys.executable).parent / "py-spy"
INVOCATION = re.compile(
    r"(SaveChat|FeedToSignalR) (?:http POST \S+ → \d+|cosmosDBTrigger \S+ \((\d+) docs\)) "
    r"in ([\d.]+) ms"
)


def start_py_spy(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    if not PY_SPY.exists():
        return None
    return subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            str(RATE),
            "--format",
            "raw",
            "--threads",
            "--subprocesses",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    path = where.split(":")[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


COMPONENTS = (  # first match wins, so the order is outermost-first
    (
        "change-feed trigger: read the feed, invoke FeedToSignalR, SignalR REST call, lease write",
        "cosmos_trigger.py",
    ),
    ("Functions host HTTP: negotiate/join/SaveChat incl. the azure-cosmos SDK upsert", "http_server.py"),
    ("Cosmos DB emulator server (HTTP, auth, store calls)", "emulators/cosmos/"),
    # In the two-process stack's main process this is the SignalR REST client (the output binding's).
    ("SignalR code (emulator REST, hub, fan-out; in the main process: its REST client)",
     "emulators/signalr/"),
    ("aiohttp client responses (SDK and REST replies) and other loop callbacks", ""),
)


# py-spy drops the samples of a thread waiting idle (no --idle): what is left in select() is the part
# it counted as busy, and the sample count against rate x seconds is how busy the loop was.
IDLE = "event loop in select (counted as busy by py-spy)"
RATE = 200


def component(frames: list[str]) -> str:
    if "EpollSelector.select" in frames[-1] or "EpollSelector.select" in frames[-2:][0]:
        return IDLE
    for label, marker in COMPONENTS:
        if not marker or any(marker in f for f in frames):
            return label
    return COMPONENTS[-1][0]


def _split(line: str) -> tuple[str, list[str], int] | None:
    """(process label, frames from the thread frame inward, samples) of one raw py-spy line; the
    label is the innermost `process <pid>:"<cmdline>"` frame's command ("" without --subprocesses)."""
    stack, _, n_text = line.rpartition(" ")
    frames = stack.split(";")
    at = next((i for i, f in enumerate(frames) if f.startswith("thread (")), None)
    if at is None or not n_text.isdigit():
        return None
    procs = [f for f in frames[:at] if f.startswith("process ")]
    label = procs[-1].partition(":")[2].strip('"') if procs else ""
    return label, frames[at:], int(n_text)


def _one(lines: list[tuple[list[str], int]], top: int) -> dict[str, Any]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    logging_samples = 0
    total = 0
    for frames, n in lines:
        if "MainThread" not in frames[0] or len(frames) < 2:
            continue
        total += n
        own[_short(frames[-1])] += n
        parts[component(frames)] += n
        if any("logging/__init__.py" in f for f in frames):
            logging_samples += n
        for f in {_short(f) for f in frames[1:]}:
            inclusive[f] += n
    generic = (
        "asyncio/",
        "runpy",
        "<module>",
        "emulators/__main__.py",
        "emulators/signalr/__main__.py",
        "web_protocol.py",
        "web_app.py",
        "tracing/decorator_async.py",
    )
    incl = [(f, n) for f, n in inclusive.most_common() if not any(g in f for g in generic)]
    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "components": [(c, round(100 * n / total, 1)) for c, n in parts.most_common()],
        "logging_pct": round(100 * logging_samples / total, 1),
        "inclusive": [(f, round(100 * n / total, 1)) for f, n in incl[:top]],
        "self": [(f, round(100 * n / total, 1)) for f, n in own.most_common(top)],
    }


def summarise(raw: Path, top: int = 25) -> dict[str, Any]:
    """Inclusive and self shares of each process's event-loop thread samples, largest first: the
    main process at the top level, every other process under `children` (by its command line)."""
    by_process: dict[str, list[tuple[list[str], int]]] = {}
    for line in raw.read_text().splitlines():
        split = _split(line)
        if split is not None:
            label, frames, n = split
            by_process.setdefault(label, []).append((frames, n))
    if not by_process:
        return {"samples": 0}
    main = min(by_process, key=lambda label: ("emulators.signalr" in label, label))
    out = _one(by_process.pop(main), top)
    out["children"] = {
        ("SignalR emulator process" if "emulators.signalr" in label else label[:100]): _one(lines, top)
        for label, lines in by_process.items()
    }
    return out


def invocations(log_text: str) -> dict[str, Any]:
    """SaveChat and FeedToSignalR durations from the host's log lines."""
    save: list[float] = []
    feed: list[tuple[int, float]] = []
    for m in INVOCATION.finditer(log_text):
        if m.group(1) == "SaveChat":
            save.append(float(m.group(3)))
        else:
            feed.append((int(m.group(2)), float(m.group(3))))
    out: dict[str, Any] = {"savechat_count": len(save)}
    if save:
        out["savechat_median_ms"] = round(statistics.median(save), 1)
    if feed:
        docs = sum(d for d, _ in feed)
        ms = sum(t for _, t in feed)
        out.update(
            {
                "feed_batches": len(feed),
                "feed_docs": docs,
                "feed_median_batch_docs": statistics.median(d for d, _ in feed),
                "feed_median_batch_ms": round(statistics.median(t for _, t in feed), 1),
                "feed_ms_per_doc": round(ms / docs, 2) if docs else None,
                "feed_busy_s": round(ms / 1000, 1),
            }
        )
    return out
