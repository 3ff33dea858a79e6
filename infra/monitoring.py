"""Log Analytics and workspace-based Application Insights, with Entra ID-only ingestion."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import applicationinsights, operationalinsights

from infra import roles
from infra.naming import logical_name
from infra.scope import Component, StackScope


class Monitoring(Component):
    """Telemetry for the app. Local auth (instrumentation-key ingestion) is off: the host sends telemetry with
    the identity, which needs Monitoring Metrics Publisher on the component."""

    def __init__(self, name: str, scope: StackScope, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("Monitoring", name, scope, opts)
        cfg = self.cfg
        self.workspace = operationalinsights.Workspace(
            logical_name(cfg, "logs"),
            **scope.placement(),
            sku=operationalinsights.WorkspaceSkuArgs(
                name=operationalinsights.WorkspaceSkuNameEnum.PER_GB2018
            ),
            retention_in_days=cfg.log_retention_days,
            opts=self.child,
        )
        self.app_insights = applicationinsights.Component(
            logical_name(cfg, "appi"),
            **scope.placement(),
            kind="web",
            application_type=applicationinsights.ApplicationType.WEB,
            workspace_resource_id=self.workspace.id,
            ingestion_mode=applicationinsights.IngestionMode.LOG_ANALYTICS,
            disable_local_auth=True,
            opts=self.child,
        )
        self.publisher_role = scope.grant(
            "monitoring-metrics-publisher",
            scope=self.app_insights.id,
            role=roles.MONITORING_METRICS_PUBLISHER,
            parent=self,
        )
        self.connection_string = self.app_insights.connection_string
        self.register_outputs({"app_insights": self.app_insights.name})
