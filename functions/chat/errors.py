"""One error shape for every 4xx the API returns, so clients can show the field and the rule."""

from __future__ import annotations

import json

import azure.functions as func


class ApiError(Exception):
    """A refusal the caller can fix: the status, a stable machine code, a sentence, and the field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}

    def response(self) -> func.HttpResponse:
        return json_response(self.body(), self.status, self.headers)


def json_response(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    """Serialise once, as UTF-8 without ASCII escapes so emoji travel byte-exact; API answers are never
    cached."""
    all_headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    all_headers.update(headers or {})
    return func.HttpResponse(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        status_code=status,
        headers=all_headers,
        mimetype="application/json",
        charset="utf-8",
    )


def method_not_allowed(allowed: list[str]) -> ApiError:
    allow = ", ".join(allowed)
    return ApiError(405, "method_not_allowed", f"this route accepts {allow}", None, {"Allow": allow})


def not_found(message: str = "no such route") -> ApiError:
    return ApiError(404, "not_found", message, None)
