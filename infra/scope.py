"""Where the stack's resources go and who is granted access to them, shared by every component.

Each concern (data, realtime, storage, monitoring, app) is its own ComponentResource, but all of them place
resources in the same resource group and region with the same tags, and grant roles to the same managed
identity. Passing that once as a StackScope keeps those rules in one place: a resource cannot end up untagged
or in another group, and every Azure RBAC grant goes through one function that sets the principal type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import authorization

from infra import roles
from infra.config import StackConfig


@dataclass(frozen=True)
class StackScope:
    """The validated config, the stack's resource group, and the identity that receives the roles."""

    cfg: StackConfig
    resource_group_name: pulumi.Input[str]
    principal_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]

    def placement(self, *, location: bool = True, tags: bool = True) -> dict[str, Any]:
        """Keyword arguments that put a resource in the stack's group (and region, with the stack's tags)."""
        placed: dict[str, Any] = {"resource_group_name": self.resource_group_name}
        if location:
            placed["location"] = self.cfg.location
        if tags:
            placed["tags"] = self.cfg.tags
        return placed

    def grant(
        self, name: str, *, scope: pulumi.Input[str], role: str, parent: pulumi.Resource
    ) -> authorization.RoleAssignment:
        """Azure RBAC `role` on `scope` for the app's identity."""
        return roles.assign_role(
            name,
            scope=scope,
            role=role,
            principal_id=self.principal_id,
            subscription_id=self.subscription_id,
            parent=parent,
        )


class Component(pulumi.ComponentResource):
    """A ComponentResource of this program (`cosmic-chat:infra:<kind>`) that knows the stack's scope."""

    def __init__(
        self, kind: str, name: str, scope: StackScope, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"cosmic-chat:infra:{kind}", name, None, opts)
        self.scope = scope
        self.cfg = scope.cfg
        self.child = pulumi.ResourceOptions(parent=self)
