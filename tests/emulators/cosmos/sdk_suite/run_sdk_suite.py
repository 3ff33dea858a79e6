"""Runs the azure-cosmos SDK's own test suite (from its sdist) against a fresh emulator.

Usage: ``python tests/emulators/cosmos/sdk_suite/run_sdk_suite.py [test_file.py ...]``
Prints one line per file and a total; exit status 1 when any non-skipped test fails.
The sdist is downloaded once into ``.cache/cosmos-sdk/`` (outside git). Each file runs in its own pytest
process: several SDK tests patch module globals and leave them patched when they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
VERSION = "4.17.1"
CACHE = ROOT / ".cache" / "cosmos-sdk"
SUITE = CACHE / f"azure_cosmos-{VERSION}" / "tests"
KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

# The applicable files: data-plane CRUD, queries, change feed, headers, partition keys, TTL, batch,
# read_items, sessions, encodings, feed ranges (sync + async where the SDK has both).
FILES = [
    "test_crud_database.py",
    "test_crud_container.py",
    "test_crud.py",
    "test_query.py",
    "test_change_feed.py",
    "test_headers.py",
    "test_partition_key.py",
    "test_ttl.py",
    "test_aggregate.py",
    "test_orderby.py",
    "test_crud_database_async.py",
    "test_crud_container_async.py",
    "test_crud_async.py",
    "test_query_async.py",
    "test_change_feed_async.py",
    "test_transactional_batch.py",
    "test_transactional_batch_async.py",
    "test_read_items.py",
    "test_encoding.py",
    "test_session.py",
    "test_resource_id.py",
    "test_none_options.py",
    "test_item_body_serialization.py",
    "test_cosmos_responses.py",
    "test_query_response_headers.py",
    "test_query_feed_range.py",
    "test_feed_range.py",
    "test_changefeed_partition_key_variation.py",
    "test_latest_session_token.py",
]


@dataclass
class Counts:
    passed: int = 0
    skipped: int = 0
    failed: int = 0

    def add(self, other: Counts) -> None:
        self.passed += other.passed
        self.skipped += other.skipped
        self.failed += other.failed


def ensure_suite() -> Path:
    """Download and unpack the sdist once (pip's ordinary client; PyPI only)."""
    if SUITE.is_dir():
        return SUITE
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"azure-cosmos=={VERSION}",
            "--no-binary",
            ":all:",
            "--no-deps",
            "-q",
            "-d",
            str(CACHE),
        ],
        check=True,
        timeout=300,
    )
    archive = next(CACHE.glob(f"azure_cosmos-{VERSION}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return SUITE


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.cosmos",
            "--port",
            str(port),
            "--in-memory",
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, f"http://127.0.0.1:{port}/"


def run_file(name: str, url: str, report_dir: Path) -> tuple[Counts, list[str], float]:
    t0 = time.perf_counter()
    report = report_dir / f"{name}.xml"
    env = {
        **os.environ,
        "ACCOUNT_HOST": url,
        "ACCOUNT_KEY": KEY,
        "COSMOS_SDK_SKIPLIST": str(HERE / "skiplist.txt"),
        "PYTHONPATH": str(HERE / "shim"),
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "cosmos_emulator_plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            "-o",
            "addopts=",
            "--timeout",
            "60",
            f"--junitxml={report}",
            name,
        ],
        cwd=SUITE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )
    counts, failures = Counts(), []
    if not report.exists():
        return Counts(failed=1), [f"{name}: no report (collection or session set-up failed)"], 0.0
    for case in ET.parse(report).getroot().iter("testcase"):
        if case.find("skipped") is not None:
            counts.skipped += 1
        elif case.find("failure") is not None or case.find("error") is not None:
            counts.failed += 1
            node = case.find("failure") if case.find("failure") is not None else case.find("error")
            msg = (node.get("message") or "").splitlines()[0][:160] if node is not None else ""
            failures.append(f"{name}::{case.get('classname', '').split('.')[-1]}::{case.get('name')}: {msg}")
        else:
            counts.passed += 1
    return counts, failures, time.perf_counter() - t0


def main(files: list[str]) -> int:
    ensure_suite()
    proc, url = start_emulator()
    report_dir = CACHE / "reports"
    report_dir.mkdir(parents=True, exist_ok=True)
    total, all_failures = Counts(), []
    started = time.perf_counter()
    try:
        # Three files at a time: runs mostly wait on round trips and sleeps; databases are per-run unique.
        with ThreadPoolExecutor(max_workers=3) as pool:
            runs = pool.map(lambda name: (name, *run_file(name, url, report_dir)), files)
            for name, counts, failures, seconds in runs:
                total.add(counts)
                all_failures += failures
                print(
                    f"{name}: {counts.passed} passed, {counts.skipped} skipped, {counts.failed} failed "
                    f"({seconds:.1f} s)",
                    flush=True,
                )
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"wall time {time.perf_counter() - started:.0f} s")
    for f in all_failures:
        print("FAILED", f)
    print(f"TOTAL: {total.passed} passed, {total.skipped} skipped, {total.failed} failed")
    return 1 if total.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or FILES))
