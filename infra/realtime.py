"""Azure SignalR Service in Serverless mode, keyless, reachable from the app's own origin only."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import signalrservice

from infra import roles
from infra.config import StackConfig
from infra.naming import logical_name


class Realtime(pulumi.ComponentResource):
    """SignalR Service + SignalR Service Owner for the app's identity.

    Serverless mode: no hub server keeps connections; the Functions bindings negotiate and send through the
    REST API. With local (access key) auth disabled, the bindings authenticate with the identity, which needs
    SignalR Service Owner (the REST API and client-token generation). CORS allows only the app's origin
    because the browser calls the service's /client/negotiate cross-origin.
    """

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        *,
        resource_group_name: pulumi.Input[str],
        principal_id: pulumi.Input[str],
        subscription_id: pulumi.Input[str],
        app_origin: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cosmic-chat:infra:Realtime", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.service = signalrservice.SignalR(
            logical_name(cfg, "signalr"),
            resource_group_name=resource_group_name,
            location=cfg.location,
            kind=signalrservice.ServiceKind.SIGNAL_R,
            sku=signalrservice.ResourceSkuArgs(
                name=cfg.signalr_sku, tier=cfg.signalr_tier, capacity=cfg.signalr_units
            ),
            features=[
                signalrservice.SignalRFeatureArgs(
                    flag=signalrservice.FeatureFlags.SERVICE_MODE, value="Serverless"
                ),
                signalrservice.SignalRFeatureArgs(
                    flag=signalrservice.FeatureFlags.ENABLE_CONNECTIVITY_LOGS, value="True"
                ),
            ],
            cors=signalrservice.SignalRCorsSettingsArgs(
                allowed_origins=[app_origin, *cfg.extra_cors_origins]
            ),
            disable_local_auth=True,
            disable_aad_auth=False,
            public_network_access="Enabled",
            tags=cfg.tags,
            opts=child,
        )
        self.owner_role = roles.assign_role(
            "signalr-service-owner",
            scope=self.service.id,
            role=roles.SIGNALR_SERVICE_OWNER,
            principal_id=principal_id,
            subscription_id=subscription_id,
            parent=self,
        )
        self.service_uri = pulumi.Output.concat("https://", self.service.host_name)
        self.register_outputs({"name": self.service.name, "service_uri": self.service_uri})
