"""Log Analytics and workspace-based Application Insights, with Entra ID-only ingestion."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import applicationinsights, operationalinsights

from infra import roles
from infra.config import StackConfig
from infra.naming import logical_name


class Monitoring(pulumi.ComponentResource):
    """Telemetry for the app. Local auth (instrumentation-key ingestion) is off: the host sends telemetry with
    the identity, which needs Monitoring Metrics Publisher on the component."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        *,
        resource_group_name: pulumi.Input[str],
        principal_id: pulumi.Input[str],
        subscription_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cosmic-chat:infra:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.workspace = operationalinsights.Workspace(
            logical_name(cfg, "logs"),
            resource_group_name=resource_group_name,
            location=cfg.location,
            sku=operationalinsights.WorkspaceSkuArgs(
                name=operationalinsights.WorkspaceSkuNameEnum.PER_GB2018
            ),
            retention_in_days=cfg.log_retention_days,
            tags=cfg.tags,
            opts=child,
        )
        self.app_insights = applicationinsights.Component(
            logical_name(cfg, "appi"),
            resource_group_name=resource_group_name,
            location=cfg.location,
            kind="web",
            application_type=applicationinsights.ApplicationType.WEB,
            workspace_resource_id=self.workspace.id,
            ingestion_mode=applicationinsights.IngestionMode.LOG_ANALYTICS,
            disable_local_auth=True,
            tags=cfg.tags,
            opts=child,
        )
        self.publisher_role = roles.assign_role(
            "monitoring-metrics-publisher",
            scope=self.app_insights.id,
            role=roles.MONITORING_METRICS_PUBLISHER,
            principal_id=principal_id,
            subscription_id=subscription_id,
            parent=self,
        )
        self.connection_string = self.app_insights.connection_string
        self.register_outputs({"app_insights": self.app_insights.name})
