"""Binding expressions: settings, tokens, and the Cosmos SQL parameter policy."""

import uuid

import pytest

from emulators.functions.expressions import (
    BindingExpressionError,
    resolve,
    resolve_settings,
    sql_parameters,
)

DATA = {"room": "general", "query": {"after": "2026-01-01T00:00:00.000Z"}, "headers": {"x-user": "ann"},
        "n": 5, "flag": True}


def test_route_query_and_header_tokens_case_insensitive():
    assert resolve("{room}/{Query.after}/{HEADERS.X-User}", DATA) == "general/2026-01-01T00:00:00.000Z/ann"
    assert resolve("{n}-{flag}", DATA) == "5-true"


def test_rand_guid_is_fresh_each_time():
    a, b = resolve("{rand-guid}", {}), resolve("{rand-guid}", {})
    assert uuid.UUID(a) and a != b


def test_missing_values_fail_like_the_webjobs_sdk():
    with pytest.raises(BindingExpressionError, match=r"No value for named parameter 'nope'\."):
        resolve("{nope}", DATA)
    with pytest.raises(BindingExpressionError, match=r"Error while accessing 'x-ms-client-principal-id'"):
        resolve("{headers.x-ms-client-principal-id}", DATA)


def test_settings_resolve_and_missing_setting_is_an_error():
    assert resolve_settings("hub-%HUB%", {"HUB": "chat"}.get, "f") == "hub-chat"
    with pytest.raises(BindingExpressionError, match="'%MISSING%' does not resolve"):
        resolve_settings("%MISSING%", {}.get, "f")


def test_sql_tokens_become_parameters_never_sql_text():
    evil = {"room": "x' OR 1=1 --", "query": {"after": "t"}}
    query, params = sql_parameters("SELECT * FROM c WHERE c.room = {room} AND c.t > {query.after} "
                                   "AND c.r2 = {room}", evil)
    assert query == "SELECT * FROM c WHERE c.room = @room AND c.t > @query_after AND c.r2 = @room"
    assert params == [{"name": "@room", "value": "x' OR 1=1 --"}, {"name": "@query_after", "value": "t"}]
    with pytest.raises(BindingExpressionError):
        sql_parameters("SELECT * FROM c WHERE c.a = {missing}", evil)
