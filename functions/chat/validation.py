"""The input rules of the chat API, as pure functions: each returns clean data or raises ApiError.

Rules follow the contract in docs/api.md. Lengths count Unicode code points after trimming, because that is
what a person counts; control characters are refused because they corrupt logs and terminals and hide text."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from .errors import ApiError

MAX_BODY_BYTES = 8 * 1024
MAX_USER = 32
MAX_TEXT = 2000
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

ROOM_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# ASCII digits only: `\d` also matches other scripts' digits ("２０２６"), which sort after every real time.
CREATED_AT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")

MESSAGE_FIELDS = frozenset({"user", "text", "id"})


@dataclass(frozen=True)
class MessageInput:
    user: str
    text: str
    id: str | None


@dataclass(frozen=True)
class HistoryQuery:
    limit: int
    after: str | None


def validate_room(room: str | None) -> str:
    # fullmatch, not `$`: `$` would let "general\n" through.
    if not isinstance(room, str) or not ROOM_RE.fullmatch(room):
        raise ApiError(
            400,
            "invalid_room",
            "room must be 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit",
            "room",
        )
    return room


def _json_object(body: bytes, allowed: frozenset[str]) -> dict[str, object]:
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes", "body")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # RecursionError: 8 KiB of "[" nests deeper than the parser's stack; bad input, not a server fault.
        raise ApiError(400, "invalid_json", "the body must be a JSON object in UTF-8", "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "not_an_object", "the body must be a JSON object", "body")
    for key in data:
        if key not in allowed:
            raise ApiError(
                400, "unknown_field", f"unknown field {key!r}; allowed: {', '.join(sorted(allowed))}", key
            )
    return data


def _has_control(value: str, allow_newline: bool) -> bool:
    return any(unicodedata.category(ch) == "Cc" and not (allow_newline and ch == "\n") for ch in value)


# ------------------------------------------------------------------ user and text: Unicode rules
# The same rules run in the browser (www/js/validate.js); tests/hostile/test_hostile_validators.py checks,
# over generated input and over every code point, that both give the same verdict and the same stored value.
#
# Unicode version. Python's `unicodedata` (14.0 in Python 3.11) and Node's ICU (17.0 in Node 20.20) disagree
# about code points assigned in Unicode 15.0-17.0: Cn here, letters, marks or format characters there, some of
# them with decompositions or combining classes that NFC acts on. Both sides pin Unicode 14.0: the code points
# below (assigned after 14.0, up to 17.0) are classified as unassigned (Cn) whatever the runtime says, and NFC
# treats them as Unicode 14.0 does, as inert starters, by normalising the pieces between them separately. So a
# name refuses them (Cn), a text keeps them as opaque visible characters (a new emoji shows to those who have
# the font). The same table is in www/js/validate.js; a test fails if a runtime assigns a code point that is
# neither in 14.0 nor here (extend the table from the newer runtime then).
AFTER_UNICODE_14 = """
088F 0897 0C5C 0CDC 0CF3 0ECE 1ACF-1ADD 1AE0-1AEB 1B4E-1B4F 1B7F 1C89-1C8A 20C1 2427-2429 2B96
2FFC-2FFF 31E4-31E5 31EF A7CB-A7CF A7D2 A7D4 A7DA-A7DC A7F1 FBC3-FBD2 FD90-FD91 FDC8-FDCE
105C0-105F3 10940-10959 10D40-10D65 10D69-10D85 10D8E-10D8F 10EC2-10EC7 10ED0-10ED8 10EFA-10EFF
1123F-11241 11380-11389 1138B 1138E 11390-113B5 113B7-113C0 113C2 113C5 113C7-113CA 113CC-113D5
113D7-113D8 113E1-113E2 116D0-116E3 11B00-11B09 11B60-11B67 11BC0-11BE1 11BF0-11BF9 11DB0-11DDB
11DE0-11DE9 11F00-11F10 11F12-11F3A 11F3E-11F5A 1342F 13439-13455 13460-143FA 16100-16139
16D40-16D79 16EA0-16EB8 16EBB-16ED3 16FF2-16FF6 187F8-187FF 18CFF 18D09-18D1E 18D80-18DF2 1B132
1B155 1CC00-1CCFC 1CD00-1CEB3 1CEBA-1CED0 1CEE0-1CEF0 1D2C0-1D2D3 1DF25-1DF2A 1E030-1E06D 1E08F
1E4D0-1E4F9 1E5D0-1E5FA 1E5FF 1E6C0-1E6DE 1E6E0-1E6F5 1E6FE-1E6FF 1F6D8 1F6DC 1F774-1F77F 1F7D9
1F8B2-1F8BB 1F8C0-1F8C1 1F8D0-1F8D8 1FA54-1FA57 1FA75-1FA77 1FA87-1FA8A 1FA8E-1FA8F 1FAAD-1FAAF
1FABB-1FABF 1FAC6 1FAC8 1FACD-1FACF 1FADA-1FADC 1FADF 1FAE8-1FAEA 1FAEF 1FAF7-1FAF8 1FBCB-1FBEF
1FBFA 2B739-2B73F 2CEA2-2CEAD 2EBF0-2EE5D 31350-33479
"""
# Invisible (or blank) characters that are not format characters: Hangul fillers, braille blank, the combining
# grapheme joiner, variation selectors, Khmer inherent vowels, Mongolian variation selectors, musical null
# notehead and beam/tie/slur/phrase controls (some of these are Cf already; listing them costs nothing).
INVISIBLE_EXTRA = """
034F 115F-1160 17B4-17B5 180B-180F 2800 3164 FE00-FE0F FFA0 1D159 1D173-1D17A E0100-E01EF
"""
# Bidi embeddings, overrides and isolates: they reorder the rest of the line, and a person never types them.
BIDI_CONTROLS = "202A-202E 2066-2069"
# What trimming removes: Python's str.isspace() set in 3.11, spelled out so the browser can trim the same.
TRIM = (
    "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _char_class(table: str) -> str:
    """A regex character class from a table of hex code points and ranges ("0041 0061-007A")."""
    parts = []
    for token in table.split():
        first, _, last = token.partition("-")
        parts.append(re.escape(chr(int(first, 16))) + (f"-{re.escape(chr(int(last, 16)))}" if last else ""))
    return "[" + "".join(parts) + "]"


AFTER_UNICODE_14_RE = re.compile(f"({_char_class(AFTER_UNICODE_14)})")  # a group, for split
INVISIBLE_EXTRA_RE = re.compile(_char_class(INVISIBLE_EXTRA))
BIDI_CONTROL_RE = re.compile(_char_class(BIDI_CONTROLS))
SPACE_RUN_RE = re.compile(r"  ")


def _category(ch: str) -> str:
    """The Unicode 14.0 general category, whatever version this Python carries (see AFTER_UNICODE_14)."""
    return "Cn" if AFTER_UNICODE_14_RE.match(ch) else unicodedata.category(ch)


def _nfc(value: str) -> str:
    """NFC as Unicode 14.0 defines it: code points assigned later are inert starters there, so the pieces
    between them are normalised on their own (a newer runtime would compose or reorder around them)."""
    pieces = AFTER_UNICODE_14_RE.split(value)
    return "".join(p if i % 2 else unicodedata.normalize("NFC", p) for i, p in enumerate(pieces))


def _normalise(value: str) -> str:
    """Trimmed, NFC, trimmed again: one spelling per name ("é" composed or "e" + U+0301 are the same person),
    and validating the stored value again returns it unchanged."""
    return _nfc(value.strip(TRIM)).strip(TRIM)


def _is_invisible(ch: str) -> bool:
    """Shows nothing on screen: a space, a control or format character, or a known blank letter or mark."""
    return _category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp") or INVISIBLE_EXTRA_RE.match(ch) is not None


def _refused_in_name(ch: str) -> bool:
    """Invisible, unassigned or private in a name, where it would let two different names look the same.
    Only the plain space is allowed among the separators."""
    return ch != " " and (_category(ch)[0] in "CZ" or INVISIBLE_EXTRA_RE.match(ch) is not None)


def _code(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def _check_name(value: str) -> None:
    """A name must look like no other name: no invisible characters, no doubled spaces, and no combining mark
    first (it would attach to whatever the page shows before the name)."""
    bad = next((ch for ch in value if _refused_in_name(ch)), None)
    if bad is not None:
        rule = f"contain invisible, formatting, unassigned or private-use characters ({_code(bad)})"
    elif SPACE_RUN_RE.search(value):
        rule = "contain two or more spaces in a row"
    elif _category(value[0])[0] == "M":
        rule = f"start with a combining mark ({_code(value[0])})"
    else:
        return
    raise ApiError(400, "invisible_character", f"user must not {rule}", "user")


def _check_text(value: str) -> None:
    """A text may carry format characters (emoji joiners, variation selectors), but not bidi controls, which
    reorder what follows on the line and can make a text look like someone else's."""
    bad = BIDI_CONTROL_RE.search(value)
    if bad:
        rule = f"bidirectional override, embedding or isolate controls ({_code(bad[0])})"
        raise ApiError(400, "invisible_character", f"text must not contain {rule}", "text")


def _required_text(data: dict[str, object], field: str, limit: int, allow_newline: bool) -> str:
    """One user or text field, normalised (see _normalise) and checked; the order of the checks is the order
    of docs/api.md, and the browser's."""
    if field not in data:
        raise ApiError(400, "required", f"{field} is required", field)
    value = data[field]
    if not isinstance(value, str):
        raise ApiError(400, "not_a_string", f"{field} must be a string", field)
    if any(unicodedata.category(ch) == "Cs" for ch in value):
        # A lone surrogate (JSON "\ud800") is not a character and cannot be stored as UTF-8.
        raise ApiError(400, "invalid_unicode", f"{field} must not contain unpaired surrogates", field)
    value = _normalise(value)
    if not value:
        raise ApiError(400, "empty", f"{field} must not be empty", field)
    if len(value) > limit:
        raise ApiError(400, "too_long", f"{field} must be at most {limit} characters", field)
    if _has_control(value, allow_newline):
        rule = "control characters other than newline" if allow_newline else "control characters"
        raise ApiError(400, "control_character", f"{field} must not contain {rule}", field)
    if all(_is_invisible(ch) for ch in value):
        raise ApiError(400, "empty", f"{field} has no visible characters", field)
    if allow_newline:
        _check_text(value)
    else:
        _check_name(value)
    return value


def parse_message(body: bytes) -> MessageInput:
    """Validate a SaveChat body; the returned user and text are trimmed and in NFC, the rest byte-exact."""
    data = _json_object(body, MESSAGE_FIELDS)
    user = _required_text(data, "user", MAX_USER, allow_newline=False)
    text = _required_text(data, "text", MAX_TEXT, allow_newline=True)
    message_id = data.get("id")
    if "id" in data:
        if not isinstance(message_id, str) or not UUID_RE.fullmatch(message_id):
            raise ApiError(
                400, "invalid_id", "id must be a UUID like 3f2b8c1e-5d4a-4c2b-9a61-0e7f5b9d2c44", "id"
            )
        message_id = message_id.lower()  # one spelling per UUID, so a retry in other case still overwrites
    return MessageInput(user=user, text=text, id=message_id)


def parse_room_action(body: bytes) -> None:
    """A join/leave body: empty or `{}`. The caller's identity says whose connections move, so a body
    naming a connection (the old `connectionId`) is refused, not ignored."""
    if body.strip():
        _json_object(body, frozenset())


def require_json(headers: Mapping[str, str]) -> None:
    """Every write's body is JSON, declared as such. A cross-site page can POST `text/plain` (or a form)
    without a preflight; `application/json` needs one, which the app's CORS policy refuses (415 otherwise,
    naming the header)."""
    media = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
            "Content-Type",
        )


def valid_created_at(value: str) -> bool:
    """The exact shape, and a real date and time. Checked for every stored message History returns, so the
    date check is `fromisoformat` (C, ~0.3 µs), not `strptime` (~10 µs, most of History's handler time)."""
    if not CREATED_AT_RE.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value[:-1])
    except ValueError:
        return False
    return True


def parse_history_query(params: dict[str, str] | object) -> HistoryQuery:
    """`limit` is 1..200 (default 50); `after` is a createdAt value, same format as the messages carry."""
    get = params.get  # type: ignore[attr-defined]
    raw_limit = get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not re.fullmatch(r"[0-9]{1,4}", raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}", "limit")
        limit = int(raw_limit)
    after = get("after")
    if after is not None and not valid_created_at(after):
        raise ApiError(
            400,
            "invalid_after",
            "after must be a createdAt value: UTC ISO-8601 with milliseconds, e.g. 2026-11-27T21:05:03.120Z",
            "after",
        )
    return HistoryQuery(limit=limit, after=after)
