"""Static files from the web client's directory, safely: no way out of it, correct types, cache headers,
ETags."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
from dataclasses import dataclass
from pathlib import Path

import azure.functions as func

APP_ROOT = Path(__file__).resolve().parent.parent

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".webmanifest": "application/manifest+json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
}
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
# A file name with a content hash of 8+ hex digits as its own dot-separated part: app.3f9a1c2e.js
HASHED_NAME = re.compile(r"\.[0-9a-f]{8,}\.[A-Za-z0-9]+$")

FALLBACK_404 = (
    b'<!doctype html><html lang="en"><meta charset="utf-8"><title>Not found</title>'
    b'<h1>Not found</h1><p>There is nothing at this address. <a href="/">Back to the chat</a></p></html>'
)


def www_root() -> Path:
    """`WWW_ROOT` if set; else `www/` beside function_app.py (deployment zip); else `../www` (repository
    layout)."""
    configured = os.environ.get("WWW_ROOT")
    if configured:
        return Path(configured).resolve()
    packaged = APP_ROOT / "www"
    return packaged.resolve() if packaged.is_dir() else (APP_ROOT.parent / "www").resolve()


def safe_relative(path: str) -> str | None:
    """The path as clean segments, or None for anything that could name a file outside the root.

    The host has already percent-decoded the URL once; any '%' left means double encoding, which no file we
    serve needs, so it is refused rather than decoded again. Backslashes, NUL, drive letters and absolute
    paths are refused outright; '.' and '..' segments are refused rather than normalised."""
    if any(ch in path for ch in ("\\", "\x00", "%")) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        return None
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        return None
    parts = path.split("/")
    if parts and parts[-1] == "":
        parts = parts[:-1]  # a trailing slash asks for the directory's index
    if any(p in ("", ".", "..") for p in parts):
        return None
    return "/".join(parts)


def resolve(root: Path, relative: str) -> Path | None:
    """The regular file `relative` names under `root`, following symlinks only while they stay inside
    `root`."""
    clean = safe_relative(relative)
    if clean is None:
        return None
    candidate = (root / clean).resolve() if clean else root
    if candidate != root and not candidate.is_relative_to(root):
        return None
    if candidate.is_dir():
        candidate = (candidate / "index.html").resolve()
        if not candidate.is_relative_to(root):
            return None
    return candidate if candidate.is_file() else None


def content_type(path: Path) -> str:
    known = CONTENT_TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def is_versioned(path: Path, query: dict[str, str] | object) -> bool:
    """A URL that changes whenever the file changes: `?v=<anything>` or a content hash in the file name."""
    return bool(query.get("v")) or bool(HASHED_NAME.search(path.name))  # type: ignore[attr-defined]


@dataclass
class _Entry:
    stamp: tuple[int, int]
    body: bytes
    etag: str


_cache: dict[Path, _Entry] = {}


def _load(path: Path) -> _Entry:
    """Read and hash once per (size, mtime); a deployment that replaces the file gets a new ETag."""
    stat = path.stat()
    stamp = (stat.st_size, stat.st_mtime_ns)
    entry = _cache.get(path)
    if entry is None or entry.stamp != stamp:
        body = path.read_bytes()
        entry = _Entry(stamp, body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        _cache[path] = entry
    return entry


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


def file_response(
    path: Path,
    method: str,
    headers: dict[str, str] | object,
    query: dict[str, str] | object,
    status: int = 200,
) -> func.HttpResponse:
    entry = _load(path)
    ctype = content_type(path)
    cache = NO_CACHE if ctype.startswith("text/html") or not is_versioned(path, query) else IMMUTABLE
    out_headers = {
        "ETag": entry.etag,
        "Cache-Control": cache,
        "X-Content-Type-Options": "nosniff",
        "Content-Type": ctype,
    }
    inm = headers.get("if-none-match")  # type: ignore[attr-defined]
    if status == 200 and inm and _etag_matches(inm, entry.etag):
        return func.HttpResponse(status_code=304, headers=out_headers)
    body = b"" if method == "HEAD" else entry.body
    if method == "HEAD":
        out_headers["Content-Length"] = str(len(entry.body))
    return func.HttpResponse(body, status_code=status, headers=out_headers)


def not_found_page(root: Path, method: str) -> func.HttpResponse:
    """`404.html` from the web client when it has one, else a small built-in page; never cached."""
    page = resolve(root, "404.html")
    body = page.read_bytes() if page else FALLBACK_404
    return func.HttpResponse(
        b"" if method == "HEAD" else body,
        status_code=404,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": NO_CACHE,
            "X-Content-Type-Options": "nosniff",
        },
    )
