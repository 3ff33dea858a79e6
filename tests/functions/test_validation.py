"""Every input rule of the API, at the level of the pure validators (status, code and field of each
refusal)."""

from __future__ import annotations

import json
import string
import unicodedata
from datetime import datetime

import pytest
from chat.errors import ApiError
from chat.validation import (
    MAX_BODY_BYTES,
    parse_history_query,
    parse_message,
    parse_room_action,
    require_json,
    valid_created_at,
    validate_room,
)
from hypothesis import given
from hypothesis import strategies as st


def refused(fn, *args) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args)
    return info.value


def body(**fields) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


@pytest.mark.parametrize("room", ["general", "a", "0", "room-2", "a" * 32, "9-lives"])
def test_valid_rooms(room):
    assert validate_room(room) == room


@pytest.mark.parametrize(
    "room",
    ["", "-lead", "General", "a" * 33, "a b", "a_b", "général", "general\n", None, "a/b", "..", "ｇeneral"],
)
def test_invalid_rooms(room):
    error = refused(validate_room, room)
    assert (error.status, error.code, error.field) == (400, "invalid_room", "room")


def test_message_trimmed_and_exact():
    data = parse_message(body(user="  ada ", text="  hello 👋🏽 世界\nnext line  "))
    assert data.user == "ada"
    assert data.text == "hello 👋🏽 世界\nnext line"
    assert data.id is None


def test_emoji_with_joiners_and_all_scripts_are_stored_exactly():
    england = "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"  # a flag of tag characters
    text = f"👩‍👩‍👧‍👦 עברית العربية हिन्दी 🇺🇦 ❤️ {england} é"
    assert parse_message(body(user="Ада 李", text=text)).text == text


def test_uuid_id_is_kept_lowercase():
    data = parse_message(body(user="a", text="b", id="3F2B8C1E-5D4A-4C2B-9A61-0E7F5B9D2C44"))
    assert data.id == "3f2b8c1e-5d4a-4c2b-9a61-0e7f5b9d2c44"


@pytest.mark.parametrize(
    ("raw", "status", "code", "field"),
    [
        (b"{", 400, "invalid_json", "body"),
        (b"\xff\xfe", 400, "invalid_json", "body"),
        (b"", 400, "invalid_json", "body"),
        (b"[]", 400, "not_an_object", "body"),
        (b'"text"', 400, "not_an_object", "body"),
        (b"null", 400, "not_an_object", "body"),
        (b"[" * 8000, 400, "invalid_json", "body"),  # deeper than the parser's recursion limit
        (b'{"a":' * 1600, 400, "invalid_json", "body"),
        (body(text="x"), 400, "required", "user"),
        (body(user="x"), 400, "required", "text"),
        (body(user=1, text="x"), 400, "not_a_string", "user"),
        (body(user="x", text=None), 400, "not_a_string", "text"),
        (body(user="   ", text="x"), 400, "empty", "user"),
        (body(user="x", text="\n\t "), 400, "empty", "text"),
        (body(user="x" * 33, text="x"), 400, "too_long", "user"),
        (body(user="x", text="y" * 2001), 400, "too_long", "text"),
        (body(user="a\nb", text="x"), 400, "control_character", "user"),
        (body(user="a\tb", text="x"), 400, "control_character", "user"),
        (body(user="x", text="a\tb"), 400, "control_character", "text"),
        (body(user="x", text="a\r\nb"), 400, "control_character", "text"),
        (body(user="x", text="a\x00b"), 400, "control_character", "text"),
        (body(user="x", text="a\x85b"), 400, "control_character", "text"),
        (b'{"user": "x", "text": "a\\ud800b"}', 400, "invalid_unicode", "text"),
        (b'{"user": "\\udfff", "text": "b"}', 400, "invalid_unicode", "user"),
        (body(user="x", text="y", id="not-a-uuid"), 400, "invalid_id", "id"),
        (body(user="x", text="y", id="{3f2b8c1e-5d4a-4c2b-9a61-0e7f5b9d2c44}"), 400, "invalid_id", "id"),
        (body(user="x", text="y", id=7), 400, "invalid_id", "id"),
        (body(user="x", text="y", room="other"), 400, "unknown_field", "room"),
        (body(user="x", message="y"), 400, "unknown_field", "message"),
    ],
)
def test_message_refusals(raw, status, code, field):
    error = refused(parse_message, raw)
    assert (error.status, error.code, error.field) == (status, code, field)
    assert field in error.body()["error"]["field"]


def test_body_over_8_kib_is_413_even_when_valid_json():
    raw = body(user="x", text="y" * (MAX_BODY_BYTES))
    error = refused(parse_message, raw)
    assert (error.status, error.code) == (413, "body_too_large")


def test_limits_count_code_points_not_bytes():
    data = parse_message(body(user="😀" * 32, text="😀" * 2000))
    assert (len(data.user), len(data.text)) == (32, 2000)


@given(st.text(min_size=1, max_size=2000))
def test_any_text_is_accepted_or_refused_with_a_named_rule(text):
    try:
        data = parse_message(body(user="u", text=text))
    except ApiError as error:
        assert error.status == 400 and error.field == "text"
        codes = {"empty", "too_long", "control_character", "invalid_unicode", "invisible_character"}
        assert error.code in codes
    else:
        assert data.text == unicodedata.normalize("NFC", text.strip())
        assert data.text and len(data.text) <= 2000
        assert all(ch == "\n" or not (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F) for ch in data.text)


# ------------------------------------------------------------------ look-alike names and texts


def stored(user="ada", text="hi"):
    data = parse_message(body(user=user, text=text))
    return data.user, data.text


def test_composed_and_decomposed_names_are_one_name():
    assert stored(user="Ren\u00e9e")[0] == stored(user="Rene\u0301e")[0] == "Ren\u00e9e"
    assert stored(text="A\u030angstr\u00f6m")[1] == "\u00c5ngstr\u00f6m"
    assert stored(user="\u1100\u1161")[0] == "\uac00", "Hangul jamo compose too"


def test_limits_count_the_normalised_value():
    assert stored(user="e\u0301" * 32)[0] == "\u00e9" * 32  # 64 code points typed, 32 stored


@pytest.mark.parametrize(
    "name",
    [
        # format characters: zero-width, joiners, BOM, soft hyphen, bidi marks and controls, tags
        "ad\u200ba", "ad\u200ca", "ad\u200da", "ad\u2060a", "\ufeffada", "ad\u00ada", "ad\u200ea",
        "ad\u200fa", "\u202eada", "ad\u202aa", "ad\u2066a", "ad\u061ca", "ada\U000e0041", "ada\u180e",
        # separators other than the space
        "ad\u00a0a", "ad\u2003a", "ad\u202fa", "ad\u3000a", "ad\u2028a", "ad\u2029a",
        # blank letters and marks that are not Cf
        "ada\u3164", "ada\u115f", "ada\uffa0", "ada\u2800", "ad\u034fa", "ada\ufe0f", "ada\U000e0100",
        "ada\u17b4", "ada\U0001d159", "ada\U0001d173",
        # private use, unassigned (U+1FAE8 is assigned only after Unicode 14.0, see AFTER_UNICODE_14)
        "ada\ue000", "ada\u0378", "ada\U0001fae8",
        # doubled space, a combining mark first
        "ada  lovelace", "\u0301ada", "\u20dd",
    ],
)
def test_names_that_could_pass_for_another_are_refused(name):
    error = refused(parse_message, body(user=name, text="hi"))
    assert (error.status, error.code, error.field) == (400, "invisible_character", "user")
    assert error.message.startswith("user must not")


def test_the_refusal_names_the_character_or_the_rule():
    assert "U+200B" in refused(parse_message, body(user="a\u200bb", text="x")).message
    assert "spaces in a row" in refused(parse_message, body(user="a  b", text="x")).message
    assert "combining mark" in refused(parse_message, body(user="\u0301a", text="x")).message


@pytest.mark.parametrize(
    "text", ["\u202eevil", "a\u202ab", "a\u202bb", "a\u202cb", "a\u202db", "a\u2066b", "a\u2069b"]
)
def test_bidi_controls_are_refused_in_texts(text):
    error = refused(parse_message, body(user="ada", text=text))
    assert (error.status, error.code, error.field) == (400, "invisible_character", "text")
    assert f"U+{ord(next(c for c in text if 0x202A <= ord(c) <= 0x2069)):04X}" in error.message


@pytest.mark.parametrize(
    ("user", "text", "field"),
    [
        ("\u3164", "hi", "user"),
        ("\u200b", "hi", "user"),
        ("\u3164 \u115f", "hi", "user"),
        ("ada", "\u200b  \u200b", "text"),
        ("ada", "\u2060\n\ufe0f\u00a0\u3000", "text"),
        ("ada", "\u200d", "text"),
    ],
)
def test_nothing_visible_is_empty(user, text, field):
    error = refused(parse_message, body(user=user, text=text))
    assert (error.status, error.code, error.field) == (400, "empty", field)
    assert error.message == f"{field} has no visible characters"


def test_texts_keep_emoji_sequences_and_marks():
    text = "👨\u200d👩\u200d👧 ❤\ufe0f \u200e\u05e9\u05dc\u05d5\u05dd 🫨 \u0915\u094d\u200d\u0937"
    assert stored(text=text)[1] == text
    assert stored(user="Zoë O'Brien-李", text="a  b\u00a0c")[0] == "Zoë O'Brien-李"


NFD_PIECES = " e\u0301\u0327\u0323\u00e9\u1100\u1161\u11a8A\u030a\u212b\u2126\u2000\u0344xq"


@given(st.text(st.sampled_from(NFD_PIECES), min_size=1, max_size=12))
def test_stored_values_are_nfc_and_validating_them_again_changes_nothing(typed):
    try:
        user, text = stored(user=typed, text=typed)
    except ApiError:
        return
    assert unicodedata.is_normalized("NFC", user) and user == user.strip()
    assert stored(user=user, text=text) == (user, text)


@given(st.text(alphabet=string.ascii_lowercase + string.digits + "-_ A", max_size=40))
def test_room_rule_matches_the_documented_pattern(room):
    ok = (
        1 <= len(room) <= 32
        and room[0] in string.ascii_lowercase + string.digits
        and all(c in string.ascii_lowercase + string.digits + "-" for c in room)
    )
    try:
        validate_room(room)
        assert ok
    except ApiError:
        assert not ok


def test_a_room_action_body_is_empty():
    assert parse_room_action(b"") is None
    assert parse_room_action(b" {} ") is None


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        # the caller's identity says whose connection moves: naming one is refused, not ignored
        (body(connectionId="someone-elses"), "unknown_field", "connectionId"),
        (body(room="y"), "unknown_field", "room"),
        (b"[1]", "not_an_object", "body"),
        (b"nope", "invalid_json", "body"),
    ],
)
def test_room_action_refusals(raw, code, field):
    error = refused(parse_room_action, raw)
    assert (error.status, error.code, error.field) == (400, code, field)


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        (None, False),
        ("", False),
        ("text/plain", False),
        ("text/plain; charset=utf-8", False),
        ("multipart/form-data; boundary=x", False),
        ("application/x-www-form-urlencoded", False),
        ("application/json-patch+json", False),
    ],
)
def test_writes_must_declare_json(content_type, ok):
    headers = {} if content_type is None else {"content-type": content_type}
    if ok:
        require_json(headers)
        return
    error = refused(require_json, headers)
    assert (error.status, error.code, error.field) == (415, "unsupported_media_type", "Content-Type")


def test_history_defaults_and_bounds():
    assert parse_history_query({}).limit == 50
    assert parse_history_query({"limit": "1"}).limit == 1
    assert parse_history_query({"limit": "200"}).limit == 200
    query = parse_history_query({"after": "2026-11-27T21:05:03.120Z"})
    assert query.after == "2026-11-27T21:05:03.120Z"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"limit": "99999999999"}, "limit"),
        ({"after": "yesterday"}, "after"),
        ({"after": "2026-11-27T21:05:03Z"}, "after"),
        ({"after": "2026-11-27T21:05:03.120+00:00"}, "after"),
        ({"after": "2026-13-27T21:05:03.120Z"}, "after"),
        ({"after": "2026-02-30T21:05:03.120Z"}, "after"),
        ({"after": ""}, "after"),
        ({"after": "２０２６-11-27T21:05:03.120Z"}, "after"),  # fullwidth digits are digits to `\d`
    ],
)
def test_history_refusals(params, field):
    error = refused(parse_history_query, params)
    assert (error.status, error.field) == (400, field)


@given(st.datetimes(min_value=datetime(1000, 1, 1)))
def test_every_real_timestamp_in_our_format_is_accepted(moment):
    assert valid_created_at(moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z")
