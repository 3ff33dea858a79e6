"""The protocol layer: HTTP routes, headers and wire shapes of the Cosmos DB gateway (REST, 2020-07-15).

Every store call runs on one dedicated thread (``StoreRunner``) so SQLite never blocks the event loop;
this module only parses requests, checks signatures and shapes responses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import unquote

from aiohttp import web

from . import partition
from .auth import Authenticator, is_rid_path
from .errors import CosmosError, bad_request
from .notify import NotificationHub
from .store import MAX_ITEM_BYTES, FeedPage, ItemResult, Store
from .urls import ROUTES, flag, match

log = logging.getLogger("emulators.cosmos")
T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
_JSON = "application/json"
_BODY_LIMIT = MAX_ITEM_BYTES + 64 * 1024  # request envelope allowance above the 2 MB item limit


_PARSE_INLINE_BYTES = 64 * 1024
MAX_NESTING = 128  # the service's limit for nested objects/arrays in a document


def parse_json_body(raw: bytes) -> Any:
    """JSON body → value; malformed or nested deeper than the service allows → 400 (never a 500)."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise _too_deep() from None
    # Iterative depth check: the rest of the emulator (and the service) never sees deeper values.
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > MAX_NESTING:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return value


def _reject_constant(name: str) -> Any:
    """NaN/Infinity are not JSON: the service refuses them, and SQLite's JSON functions (the ORDER BY
    indexes) could not read a document holding one."""
    raise ValueError(f"'{name}' is not a JSON value")


def _too_deep() -> CosmosError:
    return bad_request(f"The document nests objects/arrays more than {MAX_NESTING} levels deep.")


class StoreRunner:
    """Runs store calls on a single dedicated thread: serialised writes, a free event loop."""

    def __init__(self, store_factory: Callable[[], Store]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cosmos-store")
        self.store: Store = self._pool.submit(store_factory).result()

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._pool.submit(self.store.close).result()
        self._pool.shutdown(wait=True)


class CosmosApp:
    def __init__(self, runner: StoreRunner, auth: Authenticator, hub: NotificationHub) -> None:
        self.run = runner
        self.store = runner.store
        self.auth = auth
        self.hub = hub

    def build(self) -> web.Application:
        missing = sorted({r.handler for r in ROUTES} - {n for n in dir(self) if not n.startswith("_")})
        if missing:
            raise TypeError(f"urls.ROUTES names handlers CosmosApp lacks: {missing}")
        app = web.Application(client_max_size=_BODY_LIMIT + 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # -- entry -------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        activity = request.headers.get("x-ms-activity-id") or str(uuid.uuid4())
        path = request.raw_path.split("?", 1)[0]
        outcome = ""
        try:
            segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
            self.auth.verify(request.method, segments, request.headers)
            if is_rid_path(segments):
                segments = await self.run(self.store.resolve_rids, segments)
            length = request.content_length
            if length is not None and length > _BODY_LIMIT:
                raise CosmosError(
                    413, "Request size is too large: an item may be at most 2 MB (2097152 bytes)."
                )
            name, captures = match(request.method, segments, request.headers)
            response = await getattr(self, name)(request, **captures)
        except CosmosError as err:
            headers = {"x-ms-activity-id": activity, "x-ms-request-charge": "1", "Content-Type": _JSON}
            if err.substatus is not None:
                headers["x-ms-substatus"] = str(err.substatus)
            response = web.Response(status=err.status, body=err.body(), headers=headers)
            outcome = f" {err.code}: {err.message[:120]}"
        except Exception:
            log.exception("internal error on %s %s", request.method, path)
            err = CosmosError(500, "Internal error in the emulator (see its log).")
            response = web.Response(status=500, body=err.body(), headers={"Content-Type": _JSON})
        response.headers["x-ms-activity-id"] = activity
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s -> %d in %.1f ms%s",
                request.method,
                path,
                response.status,
                (time.perf_counter() - started) * 1000,
                outcome,
            )
        return response

    # -- helpers ---------------------------------------------------------------------------------

    async def json_body(self, request: web.Request, allowed: tuple[str, ...] = (_JSON,)) -> Any:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype and ctype not in allowed:
            raise CosmosError(415, f"Unsupported Content-Type '{ctype}'; expected {' or '.join(allowed)}.")
        raw = await request.read()
        if len(raw) > _BODY_LIMIT:
            raise CosmosError(413, "Request size is too large: an item may be at most 2 MB (2097152 bytes).")
        if not raw:
            raise bad_request("The request body is empty; a JSON body is required.")
        if len(raw) > _PARSE_INLINE_BYTES:  # a 2 MB document takes ~10 ms to parse: not on the loop
            return await asyncio.get_running_loop().run_in_executor(None, parse_json_body, raw)
        return parse_json_body(raw)

    def base_headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {
            "Content-Type": _JSON,
            "x-ms-request-charge": "1",
            "x-ms-serviceversion": "version=2.14.0.0",
            "x-ms-gatewayversion": "version=2.14.0",
            "x-ms-schemaversion": "1.18",
        }
        if extra:
            headers.update(extra)
        return headers

    def coll_headers(
        self, db: str, coll: str, lsn: int, extra: dict[str, str] | None = None
    ) -> dict[str, str]:
        headers = self.base_headers(
            {
                "x-ms-session-token": f"0:-1#{lsn}",
                "x-ms-alt-content-path": f"dbs/{db}/colls/{coll}",
                "x-ms-documentdb-partitionkeyrangeid": "0",
                "lsn": str(lsn),
                "x-ms-global-committed-lsn": str(lsn),
            }
        )
        if extra:
            headers.update(extra)
        return headers

    def resource_response(
        self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None
    ) -> web.Response:
        h = self.base_headers(headers)
        h["etag"] = doc.get("_etag", "")
        return web.Response(status=status, body=json.dumps(doc).encode(), headers=h)

    def feed_response(self, rid: str, key: str, page: FeedPage, headers: dict[str, str]) -> web.Response:
        body = (
            f'{{"_rid":"{rid}","{key}":[' + ",".join(page.documents) + f'],"_count":{len(page.documents)}}}'
        )
        h = dict(headers)
        h["x-ms-item-count"] = str(len(page.documents))
        if page.continuation:
            h["x-ms-continuation"] = page.continuation
        return web.Response(status=200, body=body.encode(), headers=h)

    def page_size(self, request: web.Request) -> int:
        raw = request.headers.get("x-ms-max-item-count")
        if raw is None or raw.strip() == "":
            return DEFAULT_PAGE_SIZE
        try:
            value = int(raw)
        except ValueError:
            raise bad_request(
                f"Invalid value '{raw}' for header 'x-ms-max-item-count': expected an integer."
            ) from None
        if value == -1:
            return -1
        if value < 1:
            raise bad_request("Header 'x-ms-max-item-count' must be -1 or a positive integer.")
        return value

    def pk_header(self, request: web.Request) -> list[Any] | None:
        raw = request.headers.get("x-ms-documentdb-partitionkey")
        return None if raw is None else partition.parse_header(raw)

    def epk_range(self, request: web.Request) -> tuple[str, str] | None:
        start = request.headers.get("x-ms-start-epk")
        end = request.headers.get("x-ms-end-epk")
        kind = request.headers.get("x-ms-read-key-type")
        if start is None and end is None:
            return None
        if kind is not None and kind != "EffectivePartitionKeyRange":
            raise bad_request(f"Unsupported 'x-ms-read-key-type' value '{kind}'.")
        for v in (start, end):
            if v is not None and (len(v) > 64 or any(ch not in "0123456789abcdefABCDEF" for ch in v)):
                raise bad_request(f"Effective partition key '{v[:70]}' must be hexadecimal.")
        return ((start or "").upper(), (end or "FF").upper())

    def check_range_id(self, request: web.Request) -> None:
        rng = request.headers.get("x-ms-documentdb-partitionkeyrangeid")
        if rng is not None and rng.split(",")[0].strip() not in ("0", ""):
            # 400, not the service's 410/1002: a 410 makes the SDK refresh and retry, and there is only "0".
            raise bad_request(f"Partition key range '{rng}' does not exist: the emulator has one range, '0'.")

    def continuation(self, request: web.Request) -> str | None:
        return request.headers.get("x-ms-continuation") or None

    def query_spec(self, body: Any) -> tuple[str, dict[str, Any]]:
        if isinstance(body, str):
            return body, {}
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise bad_request("The query body must be an object with a 'query' string.")
        params: dict[str, Any] = {}
        raw_params = body.get("parameters") or []
        if not isinstance(raw_params, list):
            raise bad_request("'parameters' must be an array of {name, value} objects.")
        for p in raw_params:
            if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p["name"].startswith("@"):
                raise bad_request("Each query parameter needs a 'name' starting with '@' and a 'value'.")
            params[p["name"]] = p.get("value")
        return body["query"], params

    # -- account, databases, containers -----------------------------------------------------------

    async def account(self, request: web.Request) -> web.Response:
        endpoint = f"{request.scheme}://{request.host}/"
        location = [{"name": "South Central US", "databaseAccountEndpoint": endpoint}]
        doc = {
            "_self": "",
            "id": "localhost",
            "_rid": "localhost",
            "media": "//media/",
            "addresses": "//addresses/",
            "_dbs": "//dbs/",
            "writableLocations": location,
            "readableLocations": location,
            "enableMultipleWriteLocations": False,
            "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
            "userReplicationPolicy": {
                "asyncReplication": False,
                "minReplicaSetSize": 1,
                "maxReplicasetSize": 4,
            },
            "systemReplicationPolicy": {"minReplicaSetSize": 1, "maxReplicasetSize": 4},
            "readPolicy": {"primaryReadCoefficient": 1, "secondaryReadCoefficient": 1},
            "queryEngineConfiguration": json.dumps(
                {
                    "maxSqlQueryInputLength": 262144,
                    "maxJoinsPerSqlQuery": 5,
                    "maxLogicalAndPerSqlQuery": 500,
                    "maxLogicalOrPerSqlQuery": 500,
                    "maxUdfRefPerSqlQuery": 10,
                    "maxInExpressionItemsCount": 16000,
                    "queryMaxInMemorySortDocumentCount": 500,
                    "maxQueryRequestTimeoutFraction": 0.9,
                    "sqlAllowNonFiniteNumbers": False,
                    "sqlAllowAggregateFunctions": True,
                    "sqlAllowSubQuery": False,
                    "sqlAllowScalarSubQuery": False,
                    "allowNewKeywordsAsIdentifiers": True,
                    "enableSpatialIndexing": False,
                    "maxSpatialQueryCells": 12,
                    "spatialMaxGeometryPointCount": 256,
                    "sqlDisableOptimizationFlags": 0,
                    "sqlAllowTop": True,
                    "enableParallelQuery": False,
                }
            ),
        }
        return web.Response(body=json.dumps(doc).encode(), headers=self.base_headers())

    async def offers(self, _request: web.Request) -> web.Response:
        return self.feed_response("", "Offers", FeedPage([], None, 0), {})

    async def query_feed(self, request: web.Request, feed: str, resources: list[Any]) -> web.Response:
        """A query over databases or containers: both are small in-memory lists, queried the same way."""
        text, params = self.query_spec(await self.json_body(request, (_JSON, "application/query+json")))
        page = await self.run(
            self.store.query_resources,
            resources,
            text,
            params,
            self.page_size(request),
            self.continuation(request),
        )
        return self.feed_response("", feed, page, self.base_headers())

    async def query_databases(self, request: web.Request) -> web.Response:
        return await self.query_feed(request, "Databases", await self.run(self.store.list_databases))

    async def create_database(self, request: web.Request) -> web.Response:
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise bad_request("The database body must be a JSON object with an 'id'.")
        return self.resource_response(201, await self.run(self.store.create_database, body))

    async def list_databases(self, _request: web.Request) -> web.Response:
        dbs = await self.run(self.store.list_databases)
        page = FeedPage([json.dumps(d) for d in dbs], None, 0)
        return self.feed_response("", "Databases", page, self.base_headers())

    async def read_database(self, _request: web.Request, db: str) -> web.Response:
        return self.resource_response(200, await self.run(self.store.get_database, db))

    async def delete_database(self, _request: web.Request, db: str) -> web.Response:
        await self.run(self.store.delete_database, db)
        return web.Response(status=204, headers=self.base_headers())

    async def query_containers(self, request: web.Request, db: str) -> web.Response:
        colls = await self.run(self.store.list_containers, db)
        return await self.query_feed(request, "DocumentCollections", colls)

    async def create_container(self, request: web.Request, db: str) -> web.Response:
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise bad_request("The container body must be a JSON object with 'id' and 'partitionKey'.")
        return self.resource_response(201, await self.run(self.store.create_container, db, body))

    async def list_containers(self, _request: web.Request, db: str) -> web.Response:
        colls = await self.run(self.store.list_containers, db)
        db_doc = await self.run(self.store.get_database, db)
        page = FeedPage([json.dumps(c) for c in colls], None, 0)
        return self.feed_response(db_doc["_rid"], "DocumentCollections", page, self.base_headers())

    async def read_container(self, _request: web.Request, db: str, coll: str) -> web.Response:
        doc = await self.run(self.store.get_container, db, coll)
        usage = {
            "x-ms-alt-content-path": f"dbs/{db}",
            "x-ms-resource-usage": "documentsCount=0",
            "x-ms-resource-quota": "documentsCount=-1",
        }
        return self.resource_response(200, doc, usage)

    async def replace_container(self, request: web.Request, db: str, coll: str) -> web.Response:
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise bad_request("The container body must be a JSON object.")
        return self.resource_response(200, await self.run(self.store.replace_container, db, coll, body))

    async def delete_container(self, _request: web.Request, db: str, coll: str) -> web.Response:
        await self.run(self.store.delete_container, db, coll)
        return web.Response(status=204, headers=self.base_headers())

    async def delete_partition(self, request: web.Request, db: str, coll: str) -> web.Response:
        lsn = await self.run(self.store.delete_partition, db, coll, self.pk_header(request))
        return web.Response(status=200, headers=self.coll_headers(db, coll, lsn))

    async def list_conflicts(self, _request: web.Request, db: str, coll: str) -> web.Response:
        """Write conflicts only arise with multiple write regions; this single-region account has none."""
        doc = await self.run(self.store.get_container, db, coll)
        return self.feed_response(doc["_rid"], "Conflicts", FeedPage([], None, 0), self.base_headers())

    async def read_conflict(self, _request: web.Request, db: str, coll: str, conflict: str) -> web.Response:
        await self.run(self.store.get_container, db, coll)
        raise CosmosError(404, "Conflict not found: a single-region account has no write conflicts.")

    async def pkranges(self, request: web.Request, db: str, coll: str) -> web.Response:
        doc = await self.run(self.store.get_container, db, coll)
        etag = f'"pkranges-{doc["_rid"]}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=self.base_headers({"etag": etag}))
        ranges = [
            {
                "id": "0",
                "minInclusive": "",
                "maxExclusive": "FF",
                "parents": [],
                "_rid": doc["_rid"],
                "_etag": etag,
                "ridPrefix": 0,
                "throughputFraction": 1,
                "status": "online",
                "_ts": doc["_ts"],
                "_lsn": 1,
            }
        ]
        page = FeedPage([json.dumps(r) for r in ranges], None, 0)
        return self.feed_response(doc["_rid"], "PartitionKeyRanges", page, self.base_headers({"etag": etag}))

    # -- documents ---------------------------------------------------------------------------------

    async def create_item(self, request: web.Request, db: str, coll: str) -> web.Response:
        h = request.headers
        doc = await self.json_body(request)
        result = await self.run(
            self.store.upsert_item,
            db,
            coll,
            doc,
            self.pk_header(request),
            upsert=flag(h.get("x-ms-documentdb-is-upsert")),
            if_match=h.get("If-Match"),
            if_none_match=h.get("If-None-Match"),
        )
        self.hub.notify(db, coll)
        return self.item_response(request, db, coll, result)

    async def read_feed(self, request: web.Request, db: str, coll: str) -> web.Response:
        self.check_range_id(request)
        page = await self.run(
            self.store.read_feed,
            db,
            coll,
            self.pk_header(request),
            self.epk_range(request),
            self.page_size(request),
            self.continuation(request),
        )
        return self.feed_response(page.rid, "Documents", page, self.coll_headers(db, coll, page.lsn))

    async def batch(self, request: web.Request, db: str, coll: str) -> web.Response:
        if not flag(request.headers.get("x-ms-cosmos-batch-atomic", "True")):
            raise bad_request(
                "Only atomic transactional batches are supported (x-ms-cosmos-batch-atomic: True)."
            )
        operations = await self.json_body(request)
        status, results, lsn = await self.run(self.store.batch, db, coll, self.pk_header(request), operations)
        writes = ("Create", "Upsert", "Replace", "Patch")
        if status == 200 and any(
            isinstance(o, dict) and o.get("operationType") in writes for o in operations
        ):
            self.hub.notify(db, coll)
        return web.Response(
            status=status, body=json.dumps(results).encode(), headers=self.coll_headers(db, coll, lsn)
        )

    async def query_plan(self, _request: web.Request, db: str, coll: str) -> web.Response:
        raise bad_request("Query plans are not supported: the emulator executes queries directly.")

    async def query_items(self, request: web.Request, db: str, coll: str) -> web.Response:
        self.check_range_id(request)
        text, params = self.query_spec(await self.json_body(request, ("application/query+json", _JSON)))
        page = await self.run(
            self.store.query,
            db,
            coll,
            text,
            params,
            self.pk_header(request),
            self.epk_range(request),
            self.page_size(request),
            self.continuation(request),
        )
        return self.feed_response(page.rid, "Documents", page, self.coll_headers(db, coll, page.lsn))

    async def change_feed(self, request: web.Request, db: str, coll: str) -> web.Response:
        aim = request.headers["A-IM"]
        if aim.strip().lower() != "incremental feed":
            raise bad_request(
                f"A-IM '{aim}' is not supported: the emulator serves the latest-version "
                "change feed ('Incremental Feed') only."
            )
        self.check_range_id(request)
        after, since = self.change_feed_start(request.headers)
        page = await self.run(
            self.store.change_feed,
            db,
            coll,
            after_lsn=after,
            since_ts=since,
            pk=self.pk_header(request),
            epk_range=self.epk_range(request),
            max_items=self.page_size(request),
        )
        headers = self.coll_headers(db, coll, page.lsn, {"etag": page.etag or '"0"'})
        if page.not_modified:
            return web.Response(status=304, headers=headers)
        return self.feed_response(page.rid, "Documents", page, headers)

    @staticmethod
    def change_feed_start(h: Any) -> tuple[int | None, int | None]:
        """(after LSN, since timestamp) from If-None-Match / If-Modified-Since; None LSN = from now."""
        inm = h.get("If-None-Match")
        after: int | None
        if inm is None:
            after = 0
        elif inm.strip() == "*":
            after = None
        else:
            token = inm.strip().strip("'\"")
            if not token.isdigit():
                raise bad_request(
                    f"The change feed continuation (If-None-Match) '{inm[:60]}' must be a quoted LSN."
                )
            after = int(token)
        since: int | None = None
        ims = h.get("If-Modified-Since")
        if ims:
            try:
                since = int(parsedate_to_datetime(ims).timestamp())
            except (TypeError, ValueError):
                raise bad_request(
                    f"Header 'If-Modified-Since' value '{ims}' is not an RFC 1123 date."
                ) from None
            if after is None:
                after = 0
        return after, since

    async def read_item(self, request: web.Request, db: str, coll: str, item: str) -> web.Response:
        result = await self.run(self.store.read_item, db, coll, item, self.pk_header(request))
        inm = request.headers.get("If-None-Match")
        if inm and inm == result.etag:
            return web.Response(
                status=304, headers=self.coll_headers(db, coll, result.lsn, {"etag": result.etag})
            )
        return self.item_response(request, db, coll, result)

    async def replace_item(self, request: web.Request, db: str, coll: str, item: str) -> web.Response:
        doc = await self.json_body(request)
        result = await self.run(
            self.store.replace_item,
            db,
            coll,
            item,
            doc,
            self.pk_header(request),
            request.headers.get("If-Match"),
        )
        self.hub.notify(db, coll)
        return self.item_response(request, db, coll, result)

    async def patch_item(self, request: web.Request, db: str, coll: str, item: str) -> web.Response:
        patch = await self.json_body(request, ("application/json-patch+json", _JSON))
        result = await self.run(
            self.store.patch_item,
            db,
            coll,
            item,
            self.pk_header(request),
            patch,
            request.headers.get("If-Match"),
        )
        self.hub.notify(db, coll)
        return self.item_response(request, db, coll, result)

    async def delete_item(self, request: web.Request, db: str, coll: str, item: str) -> web.Response:
        result = await self.run(
            self.store.delete_item, db, coll, item, self.pk_header(request), request.headers.get("If-Match")
        )
        return web.Response(status=204, headers=self.coll_headers(db, coll, result.lsn))

    def item_response(self, request: web.Request, db: str, coll: str, result: ItemResult) -> web.Response:
        headers = self.coll_headers(db, coll, result.lsn, {"etag": result.etag or ""})
        minimal = request.headers.get("Prefer", "").strip().lower() == "return=minimal"
        body = b"" if minimal or result.body is None else result.body.encode()
        return web.Response(status=result.status, body=body, headers=headers)
