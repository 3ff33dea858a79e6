"""SaveChat's write: create the message if its id is free in the room, never replace one.

`create_item` is the service's create-if-absent: 201, or 409 when the room already holds the id. Then the
stored message decides: the same author with the same name and text is a retry of this very message (its
first answer was lost), answered with what is stored (200: nothing written, no new createdAt, no second
change-feed event, so no second broadcast); anything else is someone else's message and stays untouched
(409 naming `id`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import AzureError
from azure.cosmos import exceptions

from . import cosmos
from .errors import ApiError
from .messages import public_message

SAME_MESSAGE = ("authorId", "user", "text")


def _taken() -> ApiError:
    return ApiError(
        409,
        "id_taken",
        "another message in this room has this id: send a new message with a new id",
        "id",
    )


async def _existing(container: Any, document: Mapping[str, str]) -> dict[str, Any] | None:
    try:
        return dict(await container.read_item(document["id"], partition_key=document["room"]))
    except exceptions.CosmosResourceNotFoundError:
        return None  # deleted (TTL) between our create and this read: create again


async def save_once(document: Mapping[str, str]) -> tuple[dict[str, str], bool]:
    """(the public message, True if this call stored it); ApiError 409 or 503 otherwise."""
    container = cosmos.container(cosmos.MESSAGES)
    try:
        for _ in range(2):
            try:
                await container.create_item(dict(document), no_response=True)
                return _public(document), True
            except exceptions.CosmosResourceExistsError:
                stored = await _existing(container, document)
            if stored is not None:
                if any(stored.get(field) != document[field] for field in SAME_MESSAGE):
                    raise _taken()
                return _public(stored), False
    except (AzureError, cosmos.StoreUnavailable) as error:
        raise cosmos.unavailable("the message could not be stored", error) from None
    raise _taken()


def _public(document: Mapping[str, Any]) -> dict[str, str]:
    message = public_message(document)
    if message is None:  # a stored document under this id that is not a chat message
        raise _taken()
    return message
