"""Pulumi program for Cosmic Chat: composes the components in infra/ and exports what a person needs.

Order of creation (each arrow is a dependency): resource group + identity → Cosmos DB, SignalR, storage,
monitoring and every role assignment of the identity → Function App → code deployment (publish, poll, probe).
"""

from __future__ import annotations

from pathlib import Path

import pulumi
from pulumi_azure_native import authorization

from infra.app import FunctionApp, default_app_name, expected_host, keyless_settings
from infra.config import load_config
from infra.data import ChatData
from infra.deploy import AppPackage
from infra.identity import Foundation
from infra.monitoring import Monitoring
from infra.realtime import Realtime
from infra.scope import StackScope
from infra.storage import HostStorage

ROOT = Path(__file__).resolve().parent

cfg = load_config()
client = authorization.get_client_config_output()
subscription_id = client.subscription_id

base = Foundation("foundation", cfg)
scope = StackScope(
    cfg,
    resource_group_name=base.resource_group.name,
    principal_id=base.identity.principal_id,
    subscription_id=subscription_id,
)

# Explicit app name, known before the app exists: SignalR CORS needs the origin, and SignalR (with its role)
# is created before the app. See infra.app.default_app_name for why this is not auto-named.
app_name = (
    pulumi.Output.from_input(cfg.app_name)
    if cfg.app_name
    else subscription_id.apply(lambda sub: default_app_name(cfg.project, cfg.stack, sub))
)
app_origin = app_name.apply(lambda name: f"https://{expected_host(name)}")

data = ChatData("data", scope)
realtime = Realtime("realtime", scope, app_origin=app_origin)
host_storage = HostStorage("storage", scope)
monitoring = Monitoring("monitoring", scope)

role_assignments = [
    data.data_contributor,
    realtime.owner_role,
    *host_storage.roles,
    monitoring.publisher_role,
]

app = FunctionApp(
    "app",
    scope,
    app_name=app_name,
    identity_id=base.identity.id,
    deployment_container_url=host_storage.deployment_container_url,
    app_settings=keyless_settings(
        identity_client_id=base.identity.client_id,
        storage_blob_endpoint=host_storage.account.primary_endpoints.blob,
        cosmos_endpoint=data.endpoint,
        signalr_service_uri=realtime.service_uri,
        app_insights_connection_string=monitoring.connection_string,
    ),
    role_assignments=role_assignments,
)

site_url = pulumi.Output.concat("https://", app.site_host)

if cfg.deploy_code:
    package = AppPackage(
        "package",
        cfg,
        root=ROOT,
        scm_host=app.scm_host,
        site_host=app.site_host,
        # The containers must exist for the trigger, and the roles for everything the code touches.
        depends_on=[
            app.app,
            app.ftp_basic_auth,
            app.scm_basic_auth,
            data.messages,
            data.leases,
            data.control,
            *role_assignments,
        ],
    )
    pulumi.export("package_sha256", package.package.sha256)
    pulumi.export("deployment_id", package.deployment.deployment_id)

pulumi.export("site_url", site_url)
# Where a client gets its identity, the first call of every session (docs/api.md "Identity").
pulumi.export("identities_url", pulumi.Output.concat(site_url, "/api/identities"))
pulumi.export("resource_group", base.resource_group.name)
pulumi.export("function_app", app.app.name)
pulumi.export("cosmos_account", data.account.name)
pulumi.export("cosmos_endpoint", data.endpoint)
pulumi.export("signalr_name", realtime.service.name)
pulumi.export("signalr_service_uri", realtime.service_uri)
pulumi.export("storage_account", host_storage.account.name)
pulumi.export("app_insights", monitoring.app_insights.name)
pulumi.export("identity_client_id", base.identity.client_id)
