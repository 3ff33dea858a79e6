"""Master-key request signatures, verified exactly as the service builds them.

Why a separate module: the signature rules (what is signed, how names are escaped, how the header is
encoded) are the part a client and a server most easily disagree on, so they live in one place and are
tested against the SDK's own signing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from .errors import CosmosError

#: The official emulator's published key (not a secret: every local Cosmos emulator uses it).
WELL_KNOWN_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

MAX_CLOCK_SKEW_SECONDS = 15 * 60


def is_rid_path(segments: list[str]) -> bool:
    """The SDK's rule: ``dbs/<8 base64 chars>/…`` is addressed by resource ids (RIDs), not names."""
    if len(segments) < 2 or segments[0].lower() != "dbs" or len(segments[1]) != 8:
        return False
    try:
        base64.b64decode(segments[1].replace("-", "/"), validate=True)
    except binascii.Error:
        return False
    return True


def resource_type_and_link(segments: list[str]) -> tuple[str, str]:
    """Signed resource type and link from the decoded path segments.

    Odd count: the last segment names a feed (``dbs``, ``docs``…) of the parent link; even count: the path
    addresses one resource whose type is the second-to-last segment. Name links are signed as the full
    path with names unescaped; RID links as the lower-cased RID of the addressed (or parent) resource.
    The partition-key delete operation is signed as type ``colls`` on its container.
    """
    if not segments:
        return "", ""
    if len(segments) == 6 and segments[4] == "operations":
        rtype, link = "colls", "/".join(segments[:4])  # the SDK signs this as a container operation
        return rtype, segments[3].lower() if is_rid_path(segments) else link
    rid = is_rid_path(segments)
    if len(segments) % 2 == 1:
        rtype, link = segments[-1], "/".join(segments[:-1])
        return rtype, (segments[-2].lower() if rid and len(segments) > 1 else link)
    return segments[-2], (segments[-1].lower() if rid else "/".join(segments))


def sign(key: str, verb: str, resource_type: str, resource_link: str, date: str) -> str:
    text = f"{verb.lower()}\n{resource_type.lower()}\n{resource_link}\n{date.lower()}\n\n"
    digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Authenticator:
    """Checks the ``authorization`` and ``x-ms-date`` headers of one request against the account keys."""

    def __init__(self, key: str, read_only_key: str | None = None) -> None:
        try:
            base64.b64decode(key, validate=True)
        except binascii.Error as exc:
            raise ValueError("the account key must be base64") from exc
        self.key = key
        self.read_only_key = read_only_key

    def verify(self, verb: str, segments: list[str], headers: dict[str, str] | object) -> None:
        get = headers.get  # type: ignore[attr-defined]
        raw = get("authorization")
        if not raw:
            raise CosmosError(401, "Required header 'authorization' is missing.")
        date = get("x-ms-date") or get("date")
        if not date:
            raise CosmosError(401, "Required header 'x-ms-date' is missing.")
        try:
            when = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            raise CosmosError(
                401, f"The 'x-ms-date' header value '{date}' is not a valid RFC 1123 date."
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        skew = abs((datetime.now(UTC) - when).total_seconds())
        if skew > MAX_CLOCK_SKEW_SECONDS:
            raise CosmosError(
                401,
                f"The request time {date} is outside the allowed 15-minute window around the server time.",
            )
        fields: dict[str, str] = {}
        for part in unquote(raw).split("&"):
            name, sep, value = part.partition("=")
            if sep:
                fields[name.strip().lower()] = value
        if fields.get("type") != "master":
            raise CosmosError(
                401, "Only master-key authorization (type=master) is supported by the emulator."
            )
        if fields.get("ver") != "1.0":
            raise CosmosError(401, "The authorization token version must be 1.0.")
        sig = fields.get("sig", "")
        rtype, link = resource_type_and_link(segments)
        expected = sign(self.key, verb, rtype, link, date)
        if hmac.compare_digest(sig.encode(), expected.encode()):
            return
        if self.read_only_key and verb.upper() in ("GET", "HEAD"):
            if hmac.compare_digest(sig.encode(), sign(self.read_only_key, verb, rtype, link, date).encode()):
                return
        if self.read_only_key and hmac.compare_digest(
            sig.encode(), sign(self.read_only_key, verb, rtype, link, date).encode()
        ):
            raise CosmosError(403, "The read-only key cannot be used for write operations.")
        raise CosmosError(
            401,
            "The input authorization token can't serve the request. The wrong key is being used or the "
            f"expected payload is not built as per the protocol. Server used the following payload to sign: "
            f"'{verb.lower()}\\n{rtype.lower()}\\n{link}\\n{date.lower()}\\n\\n'",
        )
