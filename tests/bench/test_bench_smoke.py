"""The benchmark harness at toy size: it drives the real stack and the floor through the same client
flow and counts every delivery, duplicate and miss correctly. No timing is asserted (benchmarks never
are); `make bench` produces the figures."""

from __future__ import annotations

from bench.e2e_load import Phase, PhaseResult, Server, Workers

ROOMS = ["room-a", "room-b"]


async def run_phase(kind: str, clients: int, rate: float,
                    seconds: float) -> tuple[Server, Workers, PhaseResult]:
    server = Server(kind)
    server.start()
    workers = Workers(server.base, clients, ROOMS)
    try:
        await workers.start()
        result = await Phase(server, workers, rate, seconds).run()
    except BaseException:
        await workers.close()
        server.stop()
        raise
    return server, workers, result


async def test_stack_every_acknowledged_post_reaches_every_client_of_its_room_once() -> None:
    server, workers, r = await run_phase("stack", clients=5, rate=5, seconds=2)
    try:
        # 10 posts alternate between the rooms (5 each); clients 0, 2, 4 are in room-a and 1, 3 in room-b.
        assert (r.posted, r.acked, r.post_errors) == (10, 10, 0)
        assert r.expected == 5 * 3 + 5 * 2
        assert r.deliveries == r.expected
        assert (r.missing, r.duplicates, r.closed) == (0, 0, 0)
        assert 0 < r.p50_ms <= r.p99_ms <= r.max_ms
        assert r.server_cpu > 0
    finally:
        await workers.close()
        server.stop()


async def test_floor_speaks_the_same_client_flow_and_misses_are_counted() -> None:
    server, workers, r = await run_phase("floor", clients=4, rate=10, seconds=1)
    try:
        assert (r.posted, r.acked, r.deliveries, r.missing) == (10, 10, 20, 0)
        # A phase in which a post the clients never saw is reported as acknowledged: each of the two
        # clients in its room must count it missing, and nothing else.
        await workers.command({"cmd": "start", "phase": 999})
        answers = await workers.command({"cmd": "stop", "acked": {"room-b": [7]}})
        assert sum(a["missing"] for a in answers) == 2
        assert sum(a["deliveries"] for a in answers) == 0
        assert all(e.split()[1:] == ["room-b", "seq", "7"] for a in answers for e in a["examples"])
    finally:
        await workers.close()
        server.stop()
