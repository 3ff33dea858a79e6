"""Pieces testable alone: EPK hashing against the SDK's own, signature rules, patch and path parsing."""

from __future__ import annotations

import pytest
from azure.cosmos.partition_key import PartitionKey

from emulators.cosmos.auth import resource_type_and_link
from emulators.cosmos.epk import UNDEFINED, effective_partition_key
from emulators.cosmos.errors import CosmosError
from emulators.cosmos.partition import parse_header, split_path
from emulators.cosmos.patch import apply_patch


@pytest.mark.parametrize("value", ["p1", "", "ü日本", "x" * 100, 0, 5, -1.25, 1e300, True, False, None])
def test_effective_partition_key_matches_the_sdk(value: object) -> None:
    sdk = PartitionKey(path="/pk", kind="Hash", version=2)._get_effective_partition_key_string([value])
    assert effective_partition_key([value]) == sdk


def test_signed_resource_links() -> None:
    assert resource_type_and_link([]) == ("", "")
    assert resource_type_and_link(["dbs"]) == ("dbs", "")
    assert resource_type_and_link(["dbs", "my db"]) == ("dbs", "dbs/my db")
    assert resource_type_and_link(["dbs", "d", "colls", "c", "docs"]) == ("docs", "dbs/d/colls/c")
    assert resource_type_and_link(["dbs", "d", "colls", "c", "docs", "a b"]) == (
        "docs",
        "dbs/d/colls/c/docs/a b",
    )
    # RID addressing signs the lower-cased RID of the addressed (or parent) resource
    assert resource_type_and_link(["dbs", "AQAAAA==", "colls", "AQAAAIAAAAE="]) == ("colls", "aqaaaiaaaae=")
    assert resource_type_and_link(["dbs", "d", "colls", "c", "operations", "partitionkeydelete"]) == (
        "colls",
        "dbs/d/colls/c",
    )


def test_partition_key_header_parsing() -> None:
    assert parse_header('["p1"]') == ["p1"]
    assert parse_header("[5]") == [5]
    assert parse_header("[{}]") == [UNDEFINED]
    assert parse_header('["\\u00fc"]') == ["ü"]
    for bad in ("p1", "[", '{"a":1}', '[["x"]]', '["a","b"]'):
        with pytest.raises(CosmosError) as err:
            parse_header(bad)
        assert err.value.status == 400


def test_partition_key_paths() -> None:
    assert split_path("/pk") == ["pk"]
    assert split_path("/a/b") == ["a", "b"]
    assert split_path('/"le/vel"/x') == ["le/vel", "x"]
    for bad in ("pk", "/", "/a//b", '/"open'):
        with pytest.raises(CosmosError):
            split_path(bad)


def test_patch_is_all_or_nothing() -> None:
    doc = {"id": "1", "pk": "p", "a": [1, 2], "n": 1}
    out = apply_patch(
        doc,
        [
            {"op": "add", "path": "/a/0", "value": 0},
            {"op": "incr", "path": "/n", "value": 2.5},
            {"op": "move", "from": "/n", "path": "/m"},
        ],
        {"/id", "/pk"},
    )
    assert out == {"id": "1", "pk": "p", "a": [0, 1, 2], "m": 3.5}
    with pytest.raises(CosmosError):
        apply_patch(
            doc, [{"op": "set", "path": "/x", "value": 1}, {"op": "remove", "path": "/nope"}], {"/id"}
        )
    assert doc == {"id": "1", "pk": "p", "a": [1, 2], "n": 1}
    with pytest.raises(CosmosError):
        apply_patch(doc, [{"op": "set", "path": f"/k{i}", "value": i} for i in range(11)], set())
