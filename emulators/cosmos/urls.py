"""The gateway's URL space as one table: which request goes to which handler of ``CosmosApp``.

Read it top to bottom: the first row whose method, path and request kind match wins. Paths are matched on
decoded segments (an id may hold an escaped ``/``), after ``_rid`` paths are resolved to names, so the
matcher is hand-written; the dispatch is this table. A path that matches a row but no row for its method is
a 405; a path no row describes is a 404, or a 400 for a resource type the service has and the emulator does
not (stored procedures, users, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import CosmosError, bad_request


def flag(value: str | None) -> bool:
    """A boolean header as the service reads it: only "true" (any case) is true."""
    return value is not None and value.strip().lower() == "true"


# Request kinds: the service tells operations on one path apart by headers, not by URL.
def is_query(headers: Mapping[str, str]) -> bool:
    content_type = headers.get("Content-Type", "").lower()
    return flag(headers.get("x-ms-documentdb-isquery")) or "query+json" in content_type


def is_query_header(headers: Mapping[str, str]) -> bool:
    return flag(headers.get("x-ms-documentdb-isquery"))


def is_batch(headers: Mapping[str, str]) -> bool:
    return flag(headers.get("x-ms-cosmos-is-batch-request"))


def is_query_plan(headers: Mapping[str, str]) -> bool:
    return flag(headers.get("x-ms-cosmos-is-query-plan-request"))


def is_change_feed(headers: Mapping[str, str]) -> bool:
    return headers.get("A-IM") is not None


def always(_headers: Mapping[str, str]) -> bool:
    return True


@dataclass(frozen=True)
class Route:
    method: str  # an HTTP method, or "*" for any
    path: str  # segments; "{name}" captures one, a trailing "**" any rest
    handler: str  # a method name of CosmosApp, called with the captures as keyword arguments
    when: Callable[[Mapping[str, str]], bool] = always


DB = "dbs/{db}"
COLL = "dbs/{db}/colls/{coll}"
DOCS = f"{COLL}/docs"

ROUTES: tuple[Route, ...] = (
    Route("GET", "", "account"),
    Route("*", "offers/**", "offers"),  # a serverless account has no offers
    Route("POST", "dbs", "query_databases", when=is_query),
    Route("POST", "dbs", "create_database"),
    Route("GET", "dbs", "list_databases"),
    Route("GET", DB, "read_database"),
    Route("DELETE", DB, "delete_database"),
    Route("POST", f"{DB}/colls", "query_containers", when=is_query),
    Route("POST", f"{DB}/colls", "create_container"),
    Route("GET", f"{DB}/colls", "list_containers"),
    Route("GET", COLL, "read_container"),
    Route("PUT", COLL, "replace_container"),
    Route("DELETE", COLL, "delete_container"),
    Route("POST", f"{COLL}/operations/partitionkeydelete", "delete_partition"),
    Route("GET", f"{COLL}/pkranges", "pkranges"),
    Route("GET", f"{COLL}/conflicts", "list_conflicts"),
    Route("POST", f"{COLL}/conflicts", "list_conflicts", when=is_query_header),
    Route("GET", f"{COLL}/conflicts/{{conflict}}", "read_conflict"),
    Route("DELETE", f"{COLL}/conflicts/{{conflict}}", "read_conflict"),
    Route("POST", DOCS, "batch", when=is_batch),
    Route("POST", DOCS, "query_plan", when=is_query_plan),
    Route("POST", DOCS, "query_items", when=is_query),
    Route("POST", DOCS, "create_item"),
    Route("GET", DOCS, "change_feed", when=is_change_feed),
    Route("GET", DOCS, "read_feed"),
    Route("GET", f"{DOCS}/{{item}}", "read_item"),
    Route("PUT", f"{DOCS}/{{item}}", "replace_item"),
    Route("PATCH", f"{DOCS}/{{item}}", "patch_item"),
    Route("DELETE", f"{DOCS}/{{item}}", "delete_item"),
)

# What a 405 calls each resource ("PUT is not allowed on a database.").
NOUNS: dict[str, str] = {
    "": "the account",
    "dbs": "/dbs",
    DB: "a database",
    f"{DB}/colls": "/colls",
    COLL: "a container",
    f"{COLL}/operations/partitionkeydelete": "/operations/partitionkeydelete",
    f"{COLL}/pkranges": "/pkranges",
    f"{COLL}/conflicts": "/conflicts",
    f"{COLL}/conflicts/{{conflict}}": "a conflict",
    DOCS: "/docs",
    f"{DOCS}/{{item}}": "a document",
}

# Resource types the service has and the emulator does not serve: a 400 that says so, not a 404.
NOT_SUPPORTED = frozenset(
    {
        "sprocs",
        "triggers",
        "udfs",
        "users",
        "permissions",
        "attachments",
        "clientencryptionkeys",
        "partitions",
        "schemas",
    }
)


def _captures(pattern: str, segments: list[str]) -> dict[str, str] | None:
    parts = pattern.split("/") if pattern else []
    if parts and parts[-1] == "**":
        parts = parts[:-1]
        if len(segments) < len(parts):
            return None
    elif len(segments) != len(parts):
        return None
    captured: dict[str, str] = {}
    for part, segment in zip(parts, segments, strict=False):
        if part.startswith("{"):
            captured[part[1:-1]] = segment
        elif part != segment:
            return None
    return captured


def match(method: str, segments: list[str], headers: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The handler name and path captures for a request, or the service's refusal (404/405/400)."""
    path_known = None
    for route in ROUTES:
        captured = _captures(route.path, segments)
        if captured is None:
            continue
        path_known = route.path
        if route.method in ("*", method) and route.when(headers):
            return route.handler, captured
    if path_known is not None:
        raise CosmosError(405, f"{method} is not allowed on {NOUNS[path_known]}.")
    raise _unknown(segments)


def _unknown(segments: list[str]) -> CosmosError:
    """No row describes the path: name the first resource type the emulator does not know."""
    types = segments[0::2]
    if types[0] not in ("dbs", "offers"):
        return CosmosError(404, f"Unknown resource path '/{'/'.join(segments)}'.")
    known = ("dbs", "colls", "docs")
    kind = next((t for t, k in zip(types, known, strict=False) if t != k), types[-1])
    if kind in NOT_SUPPORTED:
        return bad_request(f"Resource type '{kind}' is not supported by the emulator.")
    return CosmosError(404, f"Unknown resource type '{kind}'.")
