"""schemathesis against functions/openapi.yaml on the live local stack.

Positive and negative cases for every operation: no 5xx, status codes and bodies as documented, and nothing
stored from a refused request — afterwards the messages container (read with the Cosmos SDK) holds exactly
the documents whose POST answered 201."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ROOT
from tests.hostile.conftest import LiveStack, run_stack


@pytest.fixture(scope="module")
def live() -> Iterator[LiveStack]:
    """A stack of its own: the final check compares the whole store with this module's 201 answers."""
    yield from run_stack()


schema = schemathesis.openapi.from_path(ROOT / "functions" / "openapi.yaml")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
created: dict[str, str] = {}  # id → room of every 201 answer
answered: list[int] = []


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_against_the_contract(case, live):
    response = case.call(base_url=live.base, timeout=10)
    answered.append(response.status_code)
    if response.status_code == 201 and "room" in response.json():  # a message (not an identity)
        body = response.json()
        created[body["id"]] = body["room"]
    case.validate_response(response, checks=CHECKS)
    assert live.alive()


def test_nothing_stored_but_what_was_acknowledged(live):
    from azure.cosmos.aio import CosmosClient

    from tests.reliability.chatload import COSMOS_KEY

    async def read() -> dict[str, str]:
        async with CosmosClient(live.cosmos_url, credential=COSMOS_KEY) as client:
            container = client.get_database_client("chat").get_container_client("messages")
            return {d["id"]: d["room"] async for d in container.query_items("SELECT c.id, c.room FROM c")}

    assert answered, "the schemathesis run did not happen first"
    assert sum(400 <= s < 500 for s in answered) > 0, "no request was refused: the negative cases did not run"
    assert asyncio.run(read()) == created
    counts = {s: answered.count(s) for s in sorted(set(answered))}
    print(f"\n{len(answered)} requests, status counts {counts}, {len(created)} stored")
