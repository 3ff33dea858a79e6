"""Property tests of the validators in functions/chat/validation.py beyond tests/functions/test_validation.py:
arbitrary bytes and arbitrary JSON never escape as anything but an ApiError naming a field; the connection and
history-query rules match their documented patterns; and the client-side rules (www/js/validate.js, run in
Node) agree with the server's — whatever the client lets through, the server stores unchanged."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "functions"))
from chat.errors import ApiError
from chat.validation import (
    MAX_BODY_BYTES,
    parse_history_query,
    parse_message,
    parse_room_action,
    validate_room,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(["user", "text", "id", "connectionId", "room", "", "USER"])


def verdict(fn, *args):
    try:
        return fn(*args)
    except ApiError as error:
        assert error.status in (400, 413)
        body = error.body()["error"]
        assert body["code"] and body["message"] and isinstance(body["field"], str)
        return error


@settings(deadline=None)
@given(st.binary(max_size=MAX_BODY_BYTES + 64))
def test_any_bytes_are_a_message_or_a_named_refusal(raw):
    verdict(parse_message, raw)
    verdict(parse_room_action, raw)


@settings(deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=4) | JSON)
def test_any_json_is_a_message_or_a_named_refusal(value):
    raw = json.dumps(value).encode()
    result = verdict(parse_message, raw)
    if not isinstance(result, ApiError):
        assert set(value) <= {"user", "text", "id"}
        assert result.user == value["user"].strip() and result.text == value["text"].strip()
    verdict(parse_room_action, raw)


@settings(deadline=None)
@given(st.text(max_size=300))
def test_a_room_action_naming_any_connection_id_is_refused_naming_it(value):
    result = verdict(parse_room_action, json.dumps({"connectionId": value}).encode())
    assert isinstance(result, ApiError) and (result.code, result.field) == ("unknown_field", "connectionId")


@settings(deadline=None)
@given(st.one_of(st.none(), st.text(max_size=8), st.integers(-5, 300).map(str)),
       st.one_of(st.none(), st.text(max_size=30),
                 st.datetimes(min_value=datetime(1, 1, 1)).map(lambda d: d.isoformat(timespec="milliseconds")
                                                                + "Z")))
def test_history_query_accepts_exactly_the_documented_values(limit, after):
    params = {k: v for k, v in {"limit": limit, "after": after}.items() if v is not None}
    result = verdict(parse_history_query, params)
    limit_ok = limit is None or (re.fullmatch(r"[0-9]{1,4}", limit) is not None and 1 <= int(limit) <= 200)
    stamp = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"  # ASCII digits only
    after_ok = after is None or re.fullmatch(stamp, after) is not None
    assert isinstance(result, ApiError) == (not (limit_ok and after_ok))
    if not isinstance(result, ApiError):
        assert result.limit == (int(limit) if limit else 50) and result.after == after


@pytest.mark.parametrize("fn", [parse_message, parse_room_action])
def test_deeply_nested_json_is_invalid_json(fn):
    """8 KiB of "[" nests deeper than Python's JSON parser can recurse: RecursionError, not ValueError. Found
    by this suite and fixed in ea5ba86 (it was an uncaught exception, HTTP 500)."""
    error = verdict(fn, b"[" * 5000)
    assert isinstance(error, ApiError) and error.code == "invalid_json"


# ------------------------------------------------------------------------------- client-side rules


@pytest.fixture(scope="module")
def client_rules():
    proc = subprocess.Popen(["node", str(ROOT / "tests" / "hostile" / "validate_oracle.mjs")], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def ask(**query):
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(query) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    yield ask
    proc.stdin.close()
    proc.wait(10)


TYPED = st.text(st.characters(codec="utf-8"), max_size=40) | st.text(
    st.sampled_from(" \t\n\r\x00\x1c\x1f\x7f\x85\xa0\u2028\ufeff😀a-Z"), max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TYPED, TYPED)
def test_what_the_client_lets_through_the_server_stores_unchanged(client_rules, user, text):
    client = client_rules(user=user, text=text)
    if client["ok"]:
        sent = client["value"]
        body = json.dumps({"user": sent["user"], "text": sent["text"]}, ensure_ascii=False).encode()
        stored = verdict(parse_message, body)
        assert not isinstance(stored, ApiError), (user, text, getattr(stored, "code", ""))
        assert (stored.user, stored.text) == (sent["user"], sent["text"])
    else:
        assert client["field"] in ("user", "text") and client["message"]


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40))
def test_client_and_server_agree_on_room_names_once_normalised(client_rules, typed):
    client = client_rules(room=typed)
    if client["ok"]:
        assert verdict(validate_room, client["value"]) == client["value"]
