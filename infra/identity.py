"""The resource group and the one user-assigned managed identity the app uses for everything."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import managedidentity, resources

from infra.config import StackConfig
from infra.naming import logical_name


class Foundation(pulumi.ComponentResource):
    """Resource group + user-assigned identity.

    A user-assigned identity exists before the app, so every role assignment can be granted (and start
    propagating) before the Function App is created; a system-assigned identity would only exist after it.
    """

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("cosmic-chat:infra:Foundation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.resource_group = resources.ResourceGroup(
            f"{cfg.project}-{cfg.stack}", location=cfg.location, tags=cfg.tags, opts=child
        )
        self.identity = managedidentity.UserAssignedIdentity(
            logical_name(cfg, "identity"),
            resource_group_name=self.resource_group.name,
            location=cfg.location,
            tags=cfg.tags,
            opts=child,
        )
        self.register_outputs(
            {"resource_group": self.resource_group.name, "identity_client_id": self.identity.client_id}
        )
