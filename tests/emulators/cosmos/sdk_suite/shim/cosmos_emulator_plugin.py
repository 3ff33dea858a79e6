"""pytest plugin loaded into the azure-cosmos SDK test run: skip list and session set-up fixes.

Each skipped test carries its own reason in ``skiplist.txt`` (one ``nodeid-or-file :: reason`` per line).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SKIPS: dict[str, str] = {}
for line in Path(os.environ["COSMOS_SDK_SKIPLIST"]).read_text().splitlines():
    line = line.strip()
    if line and not line.startswith("#"):
        key, _, reason = line.partition(" :: ")
        SKIPS[key.strip()] = reason.strip() or "unsupported by the emulator"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # The shared session set-up also creates hierarchical-key (MultiHash) containers, which the emulator
    # refuses with 400; tests that use them are in the skip list, so their creation is skipped here.
    import test_config

    cfg = test_config.TestConfig
    cfg.create_single_partition_prefix_pk_container_if_not_exist = classmethod(lambda cls, client: None)
    cfg.create_multi_partition_prefix_pk_container_if_not_exist = classmethod(lambda cls, client: None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        nodeid = item.nodeid.split("/")[-1]
        base = nodeid.split("[")[0]
        file_name = nodeid.split("::")[0]
        cls = "::".join(base.split("::")[:2])
        for key in (nodeid, base, cls, file_name):
            if key in SKIPS:
                item.add_marker(pytest.mark.skip(reason=f"emulator: {SKIPS[key]}"))
                break
