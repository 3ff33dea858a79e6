"""Azure SignalR Service in Serverless mode, keyless, reachable from the app's own origin only."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import signalrservice

from infra import roles
from infra.naming import logical_name
from infra.scope import Component, StackScope


class Realtime(Component):
    """SignalR Service + SignalR Service Owner for the app's identity.

    Serverless mode: no hub server keeps connections; the Functions bindings negotiate and send through the
    REST API. With local (access key) auth disabled, the bindings authenticate with the identity, which needs
    SignalR Service Owner (the REST API and client-token generation). CORS allows only the app's origin
    because the browser calls the service's /client/negotiate cross-origin.
    """

    def __init__(
        self,
        name: str,
        scope: StackScope,
        *,
        app_origin: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("Realtime", name, scope, opts)
        cfg = self.cfg
        self.service = signalrservice.SignalR(
            logical_name(cfg, "signalr"),
            **scope.placement(),
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
            opts=self.child,
        )
        self.owner_role = scope.grant(
            "signalr-service-owner", scope=self.service.id, role=roles.SIGNALR_SERVICE_OWNER, parent=self
        )
        self.service_uri = pulumi.Output.concat("https://", self.service.host_name)
        self.register_outputs({"name": self.service.name, "service_uri": self.service_uri})
