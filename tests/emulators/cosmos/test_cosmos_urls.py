"""The gateway's URL table: every row is reachable, and what no row serves is refused as the service does."""

from __future__ import annotations

import pytest
from cosmos_testkit import raw

from emulators.cosmos import urls
from emulators.cosmos.errors import CosmosError
from emulators.cosmos.server import CosmosApp

COLL = ["dbs", "chat", "colls", "messages"]


@pytest.mark.parametrize(
    ("method", "segments", "headers", "handler", "captures"),
    [
        ("GET", [], {}, "account", {}),
        ("GET", ["offers", "x"], {}, "offers", {}),
        ("POST", ["dbs"], {"x-ms-documentdb-isquery": "True"}, "query_databases", {}),
        ("POST", ["dbs"], {"Content-Type": "Application/Query+JSON"}, "query_databases", {}),
        ("POST", ["dbs"], {}, "create_database", {}),
        ("DELETE", ["dbs", "chat"], {}, "delete_database", {"db": "chat"}),
        ("POST", [*COLL, "docs"], {"x-ms-cosmos-is-batch-request": "true"}, "batch", {}),
        ("POST", [*COLL, "docs"], {"x-ms-documentdb-isquery": "true"}, "query_items", {}),
        ("POST", [*COLL, "docs"], {"x-ms-documentdb-isquery": "false"}, "create_item", {}),
        ("GET", [*COLL, "docs"], {"A-IM": "Incremental Feed"}, "change_feed", {}),
        ("GET", [*COLL, "docs"], {}, "read_feed", {}),
        ("PATCH", [*COLL, "docs", "a/b"], {}, "patch_item", {"item": "a/b"}),
        ("POST", [*COLL, "conflicts"], {"x-ms-documentdb-isquery": "True"}, "list_conflicts", {}),
        ("POST", [*COLL, "operations", "partitionkeydelete"], {}, "delete_partition", {}),
    ],
)
def test_a_request_reaches_the_row_that_describes_it(method, segments, headers, handler, captures):
    name, captured = urls.match(method, segments, headers)
    path_ids = {"db": "chat", "coll": "messages"} if len(segments) >= 4 else {}
    assert (name, captured) == (handler, {**path_ids, **captures})


@pytest.mark.parametrize(
    ("method", "segments", "status", "message"),
    [
        ("POST", [], 405, "POST is not allowed on the account."),
        ("PUT", ["dbs"], 405, "PUT is not allowed on /dbs."),
        ("PUT", ["dbs", "chat"], 405, "PUT is not allowed on a database."),
        ("POST", [*COLL], 405, "POST is not allowed on a container."),
        ("POST", [*COLL, "conflicts"], 405, "POST is not allowed on /conflicts."),
        ("PUT", [*COLL, "conflicts", "c"], 405, "PUT is not allowed on a conflict."),
        ("DELETE", [*COLL, "docs"], 405, "DELETE is not allowed on /docs."),
        ("POST", [*COLL, "docs", "m1"], 405, "POST is not allowed on a document."),
        ("GET", ["nothing"], 404, "Unknown resource path '/nothing'."),
        ("GET", ["dbs", "chat", "users"], 400, "Resource type 'users' is not supported by the emulator."),
        ("GET", [*COLL, "sprocs"], 400, "Resource type 'sprocs' is not supported by the emulator."),
        (
            "GET",
            [*COLL, "docs", "m1", "attachments"],
            400,
            "Resource type 'attachments' is not supported by the emulator.",
        ),
        ("GET", [*COLL, "pkranges", "0"], 404, "Unknown resource type 'pkranges'."),
        ("GET", [*COLL, "bogus"], 404, "Unknown resource type 'bogus'."),
    ],
)
def test_what_no_row_serves_is_refused_with_the_services_answer(method, segments, status, message):
    with pytest.raises(CosmosError) as refused:
        urls.match(method, segments, {})
    assert (refused.value.status, refused.value.message) == (status, message)


def test_every_row_names_a_handler_of_the_app_and_every_path_a_noun():
    handlers = {name for name in dir(CosmosApp) if not name.startswith("_")}
    assert {route.handler for route in urls.ROUTES} <= handlers
    assert {route.path for route in urls.ROUTES if not route.path.endswith("**")} == set(urls.NOUNS)


def test_a_misnamed_handler_stops_the_app_from_building(monkeypatch):
    broken = (*urls.ROUTES, urls.Route("GET", "dbs/{db}/colls/{coll}/udfs", "read_udf"))
    monkeypatch.setattr("emulators.cosmos.server.ROUTES", broken)
    app = CosmosApp.__new__(CosmosApp)
    with pytest.raises(TypeError, match=r"lacks: \['read_udf'\]"):
        app.build()


def test_the_server_answers_refusals_as_cosmos_errors(emulator, container):
    coll_link = container.container_link
    r = raw(emulator.url, "GET", f"/{coll_link}/sprocs", "sprocs", coll_link)
    assert (r.status_code, r.json()) == (
        400,
        {"code": "BadRequest", "message": "Resource type 'sprocs' is not supported by the emulator."},
    )
    r = raw(emulator.url, "DELETE", f"/{coll_link}/docs", "docs", coll_link)
    assert (r.status_code, r.json()["message"]) == (405, "DELETE is not allowed on /docs.")
