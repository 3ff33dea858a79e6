"""The Cosmos DB trigger's contract: where it starts, what wakes it, when it checkpoints, and how
the lease moves between hosts. Against the real Cosmos DB emulator in-process."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from datetime import UTC, datetime

import pytest
from azure.cosmos.aio import CosmosClient
from fnhost_helpers import DB, read_all, start_host, upsert, wait_until, write_app

from emulators.cosmos import WELL_KNOWN_KEY
from emulators.functions import FunctionLoadError
from emulators.functions.cosmos_trigger import _age, _now_iso
from emulators.functions.loader import parse_retry_policy
from emulators.functions.retry import RetryPolicy

FEED_READ = "GET /dbs/testdb/colls/messages/docs"


def doc(i: int | str, room: str = "r") -> dict:
    return {"id": f"d{i}", "room": room, "text": f"d{i}"}


def logged(caplog, text: str) -> list[str]:
    """The captured log lines containing `text`."""
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


LEASE_WARNING = "Lease 0 encountered an unhandled user exception during processing."


async def test_start_from_beginning_reads_what_was_there_before_in_batches(services, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    cosmos, signalr = services
    await upsert(cosmos, *(doc(i) for i in range(5)))
    # Without start_from_beginning a new lease starts "now": the consumer's start minus 1 s, in whole
    # seconds (so up to 2 s back here, where If-Modified-Since is inclusive): earlier documents are not
    # delivered.
    await asyncio.sleep(2.2)
    host = await start_host(cosmos, signalr, "bindings")
    try:
        await asyncio.sleep(1.0)
        assert host.imported.module.SEEN == []
    finally:
        await host.close()
    host = await start_host(cosmos, signalr, "feed_options")
    try:
        module = host.imported.module
        assert await wait_until(lambda: sum(map(len, module.SEEN)) >= 5)
        assert module.SEEN == [["d0", "d1"], ["d2", "d3"], ["d4"]]  # max_items_per_invocation=2
    finally:
        await host.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("feed_options ")]
    # One line per invocation: function, trigger, size, duration, outcome.
    assert len(lines) == 3
    assert lines[0].startswith("feed_options cosmosDBTrigger testdb/messages (2 docs) in ")
    assert " ms (Succeeded, id=" in lines[0]
    # The option applies only to a lease without a continuation: a restart resumes from the checkpoint.
    host = await start_host(cosmos, signalr, "feed_options")
    try:
        await upsert(cosmos, doc("new"))
        assert await wait_until(lambda: host.imported.module.SEEN == [["dnew"]])
    finally:
        await host.close()


async def test_the_change_notification_wakes_the_idle_consumer(services, caplog):
    """feed_poll_delay is 60 s in this app: only the emulator's notification can deliver quickly,
    and while idle the consumer does not read the feed per message or on a timer."""
    cosmos, signalr = services
    host = await start_host(cosmos, signalr, "feed_options", notify=True)
    try:
        module = host.imported.module
        assert await wait_until(lambda: host.consumers[0]._lease is not None)
        await asyncio.sleep(0.2)  # the start-up read is done
        caplog.set_level(logging.INFO, logger="emulators.cosmos")
        caplog.clear()
        for i in range(3):
            await upsert(cosmos, doc(i))
            assert await wait_until(lambda i=i: [f"d{i}"] in module.SEEN, timeout=2.0), f"d{i} not delivered"
            await asyncio.sleep(0.2)
        reads = [r for r in caplog.records if r.getMessage().startswith(FEED_READ)]
        # One read per change: none to find out that a short batch caught up, none per timer.
        assert len(reads) <= 4, f"{len(reads)} change-feed reads for 3 single-document changes"
        caplog.clear()
        await asyncio.sleep(1.5)
        reads = [r for r in caplog.records if r.getMessage().startswith(FEED_READ)]
        assert len(reads) <= 1, f"{len(reads)} change-feed reads while idle"
    finally:
        await host.close()


async def test_feed_poll_delay_is_the_idle_poll_without_a_notifier(services):
    cosmos, signalr = services
    # Written before the host starts (the app starts from the beginning): written after, it could miss the
    # first poll and wait 60 s for the next one, which made this test flaky.
    await upsert(cosmos, doc(0))
    host = await start_host(cosmos, signalr, "feed_options", notify=False)
    try:
        module = host.imported.module
        assert await wait_until(lambda: module.SEEN == [["d0"]])  # the first poll, at start
        await upsert(cosmos, doc(1))
        await asyncio.sleep(1.5)
        assert module.SEEN == [["d0"]]  # the next poll is 60 s away
    finally:
        await host.close()


async def test_a_failing_batch_without_a_retry_policy_is_not_retried_and_the_feed_moves_on(
        services, http, caplog):
    """Azure's extension does not retry a batch: without @app.retry the failed batch is logged and the
    checkpoint moves past it, so the next batch is delivered and a restart does not bring it back."""
    caplog.set_level(logging.INFO, logger="emulators.functions")
    cosmos, signalr = services
    host = await start_host(cosmos, signalr)
    try:
        module = host.imported.module
        module.FAILURES["stuck"] = 10_000
        async with http.post(f"{host.url}/save/r1", json={"id": "ok", "text": "ok"}) as r:
            assert r.status == 201
        assert await wait_until(lambda: module.SEEN == [["ok"]])
        checkpoint = (await read_all(cosmos, "leases"))[0]["ContinuationToken"]
        async with http.post(f"{host.url}/save/r1", json={"id": "stuck", "text": "stuck"}) as r:
            assert r.status == 201
        assert await wait_until(lambda: logged(caplog, LEASE_WARNING))
        async with http.post(f"{host.url}/save/r1", json={"id": "next", "text": "next"}) as r:
            assert r.status == 201
        assert await wait_until(lambda: module.SEEN == [["ok"], ["next"]])
        await asyncio.sleep(0.6)
        assert module.FAILURES["stuck"] == 10_000 - 1, "the failed batch was invoked again"
        failed = [r.getMessage() for r in caplog.records if "(Failed" in r.getMessage()]
        assert len(failed) == 1
        assert failed[0].startswith("feed cosmosDBTrigger testdb/messages (1 docs) in ")
        assert "ids: stuck" in failed[0] and "injected failure for stuck" in failed[0]
        assert (await read_all(cosmos, "leases"))[0]["ContinuationToken"] != checkpoint
        assert host.consumers[0].failed_batches == 1
    finally:
        await host.close()
    # After a restart (a fresh app module: no injected failures) neither batch comes again.
    host = await start_host(cosmos, signalr)
    try:
        await asyncio.sleep(1.0)
        assert host.imported.module.SEEN == []
    finally:
        await host.close()


def gaps(attempts: list) -> list[float]:
    return [b[0] - a[0] for a, b in itertools.pairwise(attempts)]


async def test_a_fixed_delay_policy_retries_the_same_batch_n_times_then_moves_on(services, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    cosmos, signalr = services
    host = await start_host(cosmos, signalr, "retry_fixed")  # fixed_delay, 3 retries, 00:00:01
    try:
        module = host.imported.module
        module.FAILURES["poison"] = 10_000
        assert await wait_until(lambda: host.consumers[0]._lease is not None)
        await upsert(cosmos, doc("p", room="r") | {"text": "poison"})
        given_up = "Function execution failed after '3' retries."
        assert await wait_until(lambda: logged(caplog, given_up), timeout=10)
        attempts = list(module.ATTEMPTS)
        assert [(a[1], a[2], a[3]) for a in attempts] == [(["dp"], n, 3) for n in range(4)]
        for gap in gaps(attempts):
            assert 0.95 <= gap <= 1.8, gaps(attempts)
        waits = logged(caplog, "before retrying function execution")
        assert waits == [f"retried: Waiting for `00:00:01` before retrying function execution. Next attempt: "
                         f"'{n}'. Max retry count: '3'." for n in (1, 2, 3)]
        assert logged(caplog, "Giving up on ids: dp")
        assert logged(caplog, LEASE_WARNING)
        # Given up: checkpointed past, the feed moves on.
        await upsert(cosmos, doc("after"))
        assert await wait_until(lambda: module.SEEN == [["dafter"]])
        assert len(module.ATTEMPTS) == 5
    finally:
        await host.close()


async def test_success_on_a_retry_delivers_once_and_stops_retrying(services, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    cosmos, signalr = services
    host = await start_host(cosmos, signalr, "retry_fixed")
    try:
        module = host.imported.module
        module.FAILURES["flaky"] = 2
        assert await wait_until(lambda: host.consumers[0]._lease is not None)
        await upsert(cosmos, doc("f") | {"text": "flaky"})
        assert await wait_until(lambda: module.SEEN == [["df"]], timeout=6)
        await asyncio.sleep(1.3)
        assert [(a[2], a[3]) for a in module.ATTEMPTS] == [(0, 3), (1, 3), (2, 3)]
        assert module.SEEN == [["df"]]
        ok = [r.getMessage() for r in caplog.records if "(Succeeded" in r.getMessage()]
        assert len(ok) == 1 and ok[0].endswith(", retry 2 of 3)")
        assert host.consumers[0].failed_batches == 0
        assert not logged(caplog, LEASE_WARNING)
    finally:
        await host.close()


async def test_an_exponential_policy_waits_within_the_randomised_bounds(services):
    """minimum 1 s, maximum 10 s: waits 1 s, then 1 + r·1 s, then 1 + r·2 s, r in [0.8, 1.2)."""
    cosmos, signalr = services
    host = await start_host(cosmos, signalr, "retry_fixed", settings={
        "LOCAL_RETRY_POLICY_OVERRIDE__retried": json.dumps({
            "strategy": "exponential_backoff", "max_retry_count": "3", "minimum_interval": "00:00:01",
            "maximum_interval": "00:00:10"})})
    try:
        module = host.imported.module
        module.FAILURES["poison"] = 10_000
        assert await wait_until(lambda: host.consumers[0]._lease is not None)
        await upsert(cosmos, doc("p") | {"text": "poison"})
        assert await wait_until(lambda: len(module.ATTEMPTS) == 4, timeout=12)
        first, second, third = gaps(module.ATTEMPTS)
        assert 0.95 <= first <= 1.8
        assert 1.75 <= second <= 2.2 + 0.8
        assert 2.55 <= third <= 3.4 + 0.8
        await asyncio.sleep(0.5)
        assert len(module.ATTEMPTS) == 4  # 3 retries, then given up
    finally:
        await host.close()


def test_the_exponential_strategy_is_randomized_exponential_backoff():
    """RandomizedExponentialBackoffStrategy with deltaBackoff = minimumInterval."""
    policy = RetryPolicy("exponential_backoff", 10, minimum_interval=1.0, maximum_interval=30.0)
    for seed in range(200):
        d = list(itertools.islice(policy.delays(random.Random(seed)), 10))
        assert d[0] == 1.0
        for k in range(1, 6):  # 1 + r·2^(k-1), below the cap
            assert 1 + 0.8 * 2 ** (k - 1) <= d[k] <= 1 + 1.2 * 2 ** (k - 1)
        assert 26.6 <= d[6] <= 30.0  # 1 + r·32 or the cap
        assert d[7:] == [30.0, 30.0, 30.0]  # once at the maximum, it stays there
    assert list(itertools.islice(RetryPolicy("fixed_delay", -1, delay_interval=5.0).delays(), 3)) == [5.0] * 3
    same = RetryPolicy("exponential_backoff", 3, minimum_interval=4.0, maximum_interval=4.0)
    assert list(itertools.islice(same.delays(), 3)) == [4.0, 4.0, 4.0]


async def test_max_retry_count_minus_one_retries_until_it_succeeds(services, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    cosmos, signalr = services
    host = await start_host(cosmos, signalr, "retry_fixed", settings={
        "LOCAL_RETRY_POLICY_OVERRIDE__retried":
            '{"strategy": "fixed_delay", "max_retry_count": "-1", "delay_interval": "00:00:00"}'})
    try:
        module = host.imported.module
        module.FAILURES["flaky"] = 12
        assert await wait_until(lambda: host.consumers[0]._lease is not None)
        await upsert(cosmos, doc("f") | {"text": "flaky"})
        assert await wait_until(lambda: module.SEEN == [["df"]], timeout=6)
        assert [a[2] for a in module.ATTEMPTS] == list(range(13))
        assert {a[3] for a in module.ATTEMPTS} == {-1}
        assert any(r.getMessage().endswith(", retry 12 of unlimited)") for r in caplog.records)
        assert logged(caplog, "retry policy replaced by the local host setting")
    finally:
        await host.close()


async def test_a_stop_during_a_retry_wait_exits_at_once_without_a_checkpoint(services, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    cosmos, signalr = services
    host = await start_host(cosmos, signalr, "retry_fixed", settings={
        "LOCAL_RETRY_POLICY_OVERRIDE__retried":
            '{"strategy": "fixed_delay", "max_retry_count": "3", "delay_interval": "00:01:00"}'})
    loop = asyncio.get_running_loop()
    try:
        module = host.imported.module
        assert await wait_until(lambda: host.consumers[0]._lease is not None)
        await upsert(cosmos, doc("first"))
        assert await wait_until(lambda: module.SEEN == [["dfirst"]])
        checkpoint = (await read_all(cosmos, "leases"))[0]["ContinuationToken"]
        module.FAILURES["failing"] = 1
        await upsert(cosmos, doc("x") | {"text": "failing"})
        assert await wait_until(lambda: logged(caplog, "Waiting for `00:01:00`"))
    finally:
        stopping = loop.time()
        await host.close()
    assert loop.time() - stopping < 2.0, "the stop waited for the retry delay"
    assert logged(caplog, "Invocation cancelled - exiting retry loop.")
    assert (await read_all(cosmos, "leases"))[0]["ContinuationToken"] == checkpoint
    host = await start_host(cosmos, signalr, "retry_fixed")
    try:
        assert await wait_until(lambda: host.imported.module.SEEN == [["dx"]])
    finally:
        await host.close()


RETRY_APP = """
@app.retry({policy})
@app.cosmos_db_trigger(arg_name="documents", connection="CosmosDBConnection", database_name="%DB_NAME%",
                       container_name="messages", lease_container_name="leases",
                       create_lease_container_if_not_exists=False)
def feed(documents: func.DocumentList) -> None:
    pass
"""


@pytest.mark.parametrize(("policy", "message"), [
    ('strategy="linear", max_retry_count="3"', "strategy 'linear' is not one of 'fixed_delay', "
                                               "'exponential_backoff'"),
    ('strategy="fixed_delay", max_retry_count="", delay_interval="00:00:01"',
     "max_retry_count is required (Value cannot be null. (Parameter 'MaxRetryCount'))"),
    ('strategy="fixed_delay", max_retry_count="three", delay_interval="00:00:01"',
     "max_retry_count 'three' is not a whole number"),
    ('strategy="fixed_delay", max_retry_count="%RETRIES%", delay_interval="00:00:01"',
     "max_retry_count '%RETRIES%' is not a whole number"),  # the worker does not resolve settings here
    ('strategy="fixed_delay", max_retry_count="-2", delay_interval="00:00:01"',
     "max_retry_count -2 is below -1 (Specified argument was out of the range of valid values. "
     "(Parameter 'maxRetryCount'))"),
    ('strategy="fixed_delay", max_retry_count="3"',
     "fixed_delay needs delay_interval (Value cannot be null. (Parameter 'DelayInterval'))"),
    ('strategy="fixed_delay", max_retry_count="3", delay_interval="5s"',
     "delay_interval '5s' is not HH:MM:SS (time data '5s' does not match format '%H:%M:%S')"),
    ('strategy="exponential_backoff", max_retry_count="3", minimum_interval="00:00:01"',
     "exponential_backoff needs maximum_interval (Value cannot be null. (Parameter 'MaximumInterval'))"),
    ('strategy="exponential_backoff", max_retry_count="3", minimum_interval="00:00:10", '
     'maximum_interval="00:00:05"',
     "The minimumInterval must not be greater than the maximumInterval."),
])
async def test_an_invalid_retry_policy_refuses_start_up(services, tmp_path, policy, message):
    cosmos, signalr = services
    app = write_app(tmp_path / "app", RETRY_APP.format(policy=policy))
    with pytest.raises(FunctionLoadError) as refused:
        await start_host(cosmos, signalr, app)
    assert str(refused.value).startswith("function 'feed': retry policy: ")
    assert message in str(refused.value)


def test_valid_retry_policies_parse_to_whole_seconds():
    fixed = parse_retry_policy("f", {"strategy": "fixed_delay", "max_retry_count": "5",
                                     "delay_interval": "00:01:30"})
    assert fixed == RetryPolicy("fixed_delay", 5, delay_interval=90.0)
    exp = parse_retry_policy("f", {"strategy": "exponential_backoff", "max_retry_count": -1,
                                   "minimum_interval": "00:00:01", "maximum_interval": "01:00:00"})
    assert exp == RetryPolicy("exponential_backoff", -1, minimum_interval=1.0, maximum_interval=3600.0)


async def test_an_http_function_with_a_retry_policy_warns_and_is_not_retried(tmp_path, http, caplog):
    caplog.set_level(logging.INFO, logger="emulators.functions")
    from emulators.functions import start

    app = write_app(tmp_path / "app", """
CALLS = []


@app.retry(strategy="fixed_delay", max_retry_count="3", delay_interval="00:00:00")
@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    CALLS.append(1)
    raise RuntimeError("boom")
""")
    host = await start(app, port=0, create_local_settings=False)
    try:
        assert logged(caplog, "Soon retries will not be supported for function 'boom'. For more information, "
                              "please visit http://aka.ms/func-retry-policies.")
        async with http.get(f"{host.url}/api/boom") as r:
            assert r.status == 500
        await asyncio.sleep(0.2)
        assert host.imported.module.CALLS == [1]
    finally:
        await host.close()


async def test_a_lease_without_a_continuation_starts_now_again_at_each_start(services):
    """As the change feed processor: "now" (minus 1 s) is taken at every start and not stored, so a lease
    that has read nothing yet does not deliver what was written while no host ran."""
    cosmos, signalr = services
    host = await start_host(cosmos, signalr)
    try:
        assert await wait_until(lambda: host.consumers[0]._lease is not None)
        await asyncio.sleep(0.3)
    finally:
        await host.close()
    lease = (await read_all(cosmos, "leases"))[0]
    assert lease["ContinuationToken"] is None and "StartTime" not in lease
    await upsert(cosmos, doc("while-down"))
    await asyncio.sleep(2.2)  # beyond the start's 1 s back-off, in whole seconds
    host = await start_host(cosmos, signalr)
    try:
        module = host.imported.module
        assert await wait_until(lambda: host.consumers[0]._lease is not None)
        await upsert(cosmos, doc("after"))
        assert await wait_until(lambda: module.SEEN == [["dafter"]])
        await asyncio.sleep(0.6)
        assert module.SEEN == [["dafter"]]
    finally:
        await host.close()


START_APP = """
@app.cosmos_db_trigger(arg_name="documents", connection="CosmosDBConnection", database_name="%DB_NAME%",
                       container_name="messages", lease_container_name="leases",
                       create_lease_container_if_not_exists=False, feed_poll_delay=200{options})
def feed(documents: func.DocumentList) -> None:
    SEEN.append([d["id"] for d in documents])
"""


async def test_start_from_time_is_resolved_from_a_setting_and_starts_there(services, tmp_path):
    cosmos, signalr = services
    await upsert(cosmos, doc("old"))
    await asyncio.sleep(1.2)
    start_at = datetime.now(UTC).replace(microsecond=0)
    await asyncio.sleep(0.2)
    await upsert(cosmos, doc("new"))
    await asyncio.sleep(2.2)  # both are older than "now"
    app = write_app(tmp_path / "app", START_APP.format(options=', start_from_time="%START_AT%"'))
    host = await start_host(cosmos, signalr, app,
                            settings={"START_AT": start_at.isoformat().replace("+00:00", "Z")})
    try:
        assert await wait_until(lambda: host.imported.module.SEEN == [["dnew"]])
    finally:
        await host.close()


@pytest.mark.parametrize(("options", "message"), [
    (', start_from_beginning=True, start_from_time="2021-02-16T14:19:29Z"',
     "function 'feed': Only one of StartFromBeginning or StartFromTime can be used"),
    (', start_from_time="yesterday"',
     "function 'feed': startFromTime 'yesterday': The specified StartFromTime parameter is not in the "
     "correct format. Please use the ISO 8601 format with the UTC designator. For example: "
     "'2021-02-16T14:19:29Z'."),
])
async def test_start_options_azure_refuses_refuse_start_up(services, tmp_path, options, message):
    cosmos, signalr = services
    app = write_app(tmp_path / "app", START_APP.format(options=options))
    with pytest.raises(FunctionLoadError) as refused:
        await start_host(cosmos, signalr, app)
    assert str(refused.value) == message


async def test_a_clean_stop_releases_the_lease_so_a_new_machine_resumes_at_once(services, monkeypatch):
    cosmos, signalr = services
    host = await start_host(cosmos, signalr)
    try:
        await upsert(cosmos, doc("a"))
        assert await wait_until(lambda: host.imported.module.SEEN == [["da"]])
    finally:
        await host.close()
    lease = (await read_all(cosmos, "leases"))[0]
    assert lease["Owner"] is None and lease["ContinuationToken"]
    await upsert(cosmos, doc("b"))
    # A different host name (a new container, a renamed machine) is a different owner: it must not
    # wait the 60 s a live lease would need to expire.
    monkeypatch.setattr("emulators.functions.cosmos_trigger.socket.gethostname", lambda: "another-machine")
    host = await start_host(cosmos, signalr)
    try:
        assert await wait_until(lambda: host.imported.module.SEEN == [["db"]], timeout=3.0)
        assert (await read_all(cosmos, "leases"))[0]["Owner"] == "another-machine:feed"
    finally:
        await host.close()



async def test_the_lease_is_renewed_while_idle_even_with_a_long_poll_delay(services):
    """leaseRenewInterval 1 s, leaseExpirationInterval 3 s, feedPollDelay 60 s: a poll delay longer
    than the expiry must not let the lease lapse (another host would take it over)."""
    cosmos, signalr = services
    host = await start_host(cosmos, signalr, "feed_options", notify=False)
    try:
        assert await wait_until(lambda: host.consumers[0]._lease is not None)
        await asyncio.sleep(3.5)
        lease = (await read_all(cosmos, "leases"))[0]
        assert lease["Owner"] == host.consumers[0].owner
        assert _age(lease["timestamp"]) < 2.0, "the lease was not renewed while idle"
    finally:
        await host.close()


async def test_a_live_lease_is_taken_over_after_the_trigger_s_expiration_interval(services):
    cosmos, signalr = services
    loop = asyncio.get_running_loop()
    async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
        await client.get_database_client(DB).get_container_client("leases").upsert_item(
            {"id": f"opts-{DB}.messages..0", "LeaseToken": "0", "ContinuationToken": None,
             "Owner": "crashed-host:feed_options", "timestamp": _now_iso(), "version": 1})
    written = loop.time()
    await upsert(cosmos, doc("waiting"))
    host = await start_host(cosmos, signalr, "feed_options")
    try:
        module = host.imported.module
        while loop.time() - written < 2.5:  # the crashed host's lease is still live
            assert module.SEEN == []
            await asyncio.sleep(0.05)
        assert await wait_until(lambda: module.SEEN == [["dwaiting"]], timeout=5.0)  # expired after 3 s
        assert (await read_all(cosmos, "leases"))[0]["Owner"] == host.consumers[0].owner
    finally:
        await host.close()


async def test_a_lease_created_late_still_starts_when_the_host_did(services, http):
    """The lease container appears only after a message was acknowledged: the new lease must start
    from the host's start, not from its own creation, or that message would never be delivered."""
    from azure.cosmos import PartitionKey

    cosmos, signalr = services
    async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
        await client.get_database_client(DB).delete_container("leases")
    host = await start_host(cosmos, signalr)
    try:
        async with http.post(f"{host.url}/save/r1", json={"id": "early", "text": "early"}) as r:
            assert r.status == 201
        await asyncio.sleep(1.2)  # the lease will be created in a later second than the save
        async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
            await client.get_database_client(DB).create_container("leases", partition_key=PartitionKey("/id"))
        assert await wait_until(lambda: host.imported.module.SEEN == [["early"]], timeout=8.0)
    finally:
        await host.close()
