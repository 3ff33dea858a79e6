"""Cosmos-shaped errors: every client mistake becomes one of these, never a 500."""

from __future__ import annotations

import json

_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    412: "PreconditionFailed",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    500: "InternalServerError",
}


class CosmosError(Exception):
    """An error the service would return: status, Cosmos error code, message, optional sub-status."""

    def __init__(self, status: int, message: str, substatus: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = _CODES.get(status, "Error")
        self.message = message
        self.substatus = substatus

    def body(self) -> bytes:
        return json.dumps({"code": self.code, "message": self.message}).encode()


def bad_request(message: str, substatus: int | None = None) -> CosmosError:
    return CosmosError(400, message, substatus)


def not_found(message: str = "Resource Not Found", substatus: int | None = None) -> CosmosError:
    return CosmosError(404, message, substatus)
