"""Property tests of the validators in functions/chat/validation.py beyond tests/functions/test_validation.py:
arbitrary bytes and arbitrary JSON never escape as anything but an ApiError naming a field; the room-action
and history-query rules match their documented patterns; and the client-side rules (www/js/validate.js, run in
Node) agree with the server's — the same verdict, field and stored value for generated names and texts, and
for every code point (Python's and Node's Unicode versions differ; both pin 14.0, see AFTER_UNICODE_14)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "functions"))
from chat import validation
from chat.errors import ApiError
from chat.validation import (
    MAX_BODY_BYTES,
    MAX_TEXT,
    MAX_USER,
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
        nfc = lambda typed: unicodedata.normalize("NFC", typed.strip())  # noqa: E731
        assert (result.user, result.text) == (nfc(value["user"]), nfc(value["text"]))
        assert parse_message(json.dumps({"user": result.user, "text": result.text}).encode()) == result
    verdict(parse_room_action, raw)


@settings(deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=3))
def test_a_room_action_body_names_nothing(value):
    """Join/leave move the caller's own user: any field (a connectionId above all) is refused, by name."""
    result = verdict(parse_room_action, json.dumps(value).encode())
    if value:
        assert isinstance(result, ApiError) and result.code == "unknown_field" and result.field in value
    else:
        assert result is None


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


# The characters the rules are about, to be mixed far more often than arbitrary text would: decomposed and
# composing sequences, combining marks, every kind of invisible, bidi controls, private and unassigned code
# points, characters assigned after Unicode 14.0 (U+1FAE8 an emoji, U+13439 a format control, U+1611E and
# U+105D2 + U+0307 pairs that Unicode 16 composes), controls and lone surrogates.
TRICKY = (
    " \n\ta e\u0301\u0327\u0323\u20dd\u00e9A\u030a\u212b\u2126\u0344\u1100\u1161\u11a8\u2000\u2001"
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202e\u2066\u2069\u061c\U000e0041\u180e"
    "\u00a0\u2003\u202f\u3000\u2028\u2029\u115f\u1160\u3164\uffa0\u2800\u034f\ufe0f\U000e0100\u17b4"
    "\u180b\U0001d159\U0001d173\ue000\u0378\U0001fae8\U00013439\U0001611e\U000105d2\u0307😀👨"
    "\x00\x1c\x85\ud800\udc00"
)
TYPED_TRICKY = (
    st.text(st.sampled_from(TRICKY), max_size=12)
    | st.text(st.characters(codec="utf-8"), max_size=40)
    | st.lists(st.sampled_from(TRICKY) | st.characters(codec="utf-8"), max_size=16).map("".join)
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TYPED_TRICKY, TYPED_TRICKY)
def test_client_and_server_give_the_same_verdict_and_value(client_rules, user, text):
    client = client_rules(user=user, text=text)
    server = verdict(parse_message, json.dumps({"user": user, "text": text}).encode())
    if isinstance(server, ApiError):
        assert not client["ok"], (user, text, server.code, client)
        assert client["field"] == server.field, (user, text, server.code, client)
    else:
        assert client == {"ok": True, "value": {"user": server.user, "text": server.text}}, (user, text)


def test_the_unicode_tables_are_the_same_in_both():
    source = (ROOT / "www" / "js" / "validate.js").read_text(encoding="utf-8")
    for name in ("AFTER_UNICODE_14", "INVISIBLE_EXTRA", "BIDI_CONTROLS"):
        table = re.search(rf"const {name} = [`\"]([^`\"]*)[`\"];", source)
        assert table and table[1].split() == getattr(validation, name).split(), name


# Every code point of planes 0 and 1 and the tags and variation selectors of plane 14; of the rest (CJK
# ideographs, unassigned and private-use planes), each range of AFTER_UNICODE_14 and its neighbours, and a
# sample.
SWEEP = [[0, 0x1FFFF, 1], [0xE0000, 0xE0FFF, 1], [0x20000, 0x10FFFF, 0x3FF]] + [
    [int(first, 16) - 1, int(last or first, 16) + 1, 1]
    for first, _, last in (token.partition("-") for token in validation.AFTER_UNICODE_14.split())
    if int(first, 16) > 0x1FFFF
]


def server_sweep_code(ch: str) -> str:
    def ok(field: str, value: str) -> int:
        limit, newline = (MAX_USER, False) if field == "user" else (MAX_TEXT, True)
        try:
            validation._required_text({field: value}, field, limit, allow_newline=newline)
        except ApiError:
            return 0
        return 1

    inside = f"a{ch}b"
    bits = ok("user", inside) | ok("text", inside) << 1 | ok("text", ch) << 2 | ok("user", f"{ch}a") << 3
    return chr(48 + bits)


@pytest.mark.slow
def test_client_and_server_agree_on_every_code_point(client_rules):
    """Names with the code point inside and first, texts with it inside and alone, and NFC next to marks. A
    failure after a Python or Node upgrade means a runtime knows a code point neither Unicode 14.0 nor
    AFTER_UNICODE_14 does: add it to the table on both sides."""
    client = client_rules(sweep=SWEEP)
    cps = [cp for first, last, step in SWEEP for cp in range(first, last + 1, step)]
    assert len(client["codes"]) == len(cps)
    differ, changed = [], {}
    for cp, theirs in zip(cps, client["codes"], strict=True):
        if server_sweep_code(chr(cp)) != theirs:
            differ.append(f"U+{cp:04X}")
        typed = f"a{chr(cp)}\u0323\u0301"
        if validation._normalise(typed) != typed:
            changed[str(cp)] = validation._normalise(typed)
    assert not differ, differ[:50]
    assert changed == client["changed"]
