"""The Functions host's storage account (keyless) and the Flex deployment container."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import storage

from infra import roles
from infra.naming import storage_logical_name
from infra.scope import Component, StackScope

DEPLOYMENT_CONTAINER = "app-package"

# Least privilege: the app has no queue, table or Durable functions (its trigger keeps leases in Cosmos DB),
# so the host needs blobs only (its keys and locks, the deployment package), reached through
# `AzureWebJobsStorage__blobServiceUri` alone (infra/app.py). Blob Data Owner on the account also covers the
# deployment container. The official Flex + Cosmos DB + Python sample grants the same
# (Azure-Samples/functions-quickstart-python-azd-cosmosdb `infra/main.bicep`: enableBlob true, enableQueue and
# enableTable false, "Required for Durable Functions ...").
HOST_ROLES = (("blob-data-owner", roles.STORAGE_BLOB_DATA_OWNER),)


class HostStorage(Component):
    """Storage for the host (its blobs) and the deployment package, reachable only with Entra ID.

    Shared keys are off, so nothing may use a connection string; `storage.Blob` would upload with the shared
    key, which is why the code goes through the app's /api/publish endpoint instead.
    """

    def __init__(self, name: str, scope: StackScope, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("HostStorage", name, scope, opts)
        self.account = storage.StorageAccount(
            storage_logical_name(self.cfg),
            **scope.placement(),
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=storage.SkuName.STANDARD_LRS),
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_blob_public_access=False,
            allow_cross_tenant_replication=False,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            enable_https_traffic_only=True,
            public_network_access=storage.PublicNetworkAccess.ENABLED,
            opts=self.child,
        )
        self.deployment_container = storage.BlobContainer(
            "deployment",
            **scope.placement(location=False, tags=False),
            account_name=self.account.name,
            container_name=DEPLOYMENT_CONTAINER,
            public_access=storage.PublicAccess.NONE,
            opts=self.child,
        )
        self.roles = [
            scope.grant(f"storage-{label}", scope=self.account.id, role=role, parent=self)
            for label, role in HOST_ROLES
        ]
        # primary_endpoints.blob ends with "/".
        self.deployment_container_url = pulumi.Output.concat(
            self.account.primary_endpoints.blob, self.deployment_container.name
        )
        self.register_outputs(
            {"account": self.account.name, "deployment_container": self.deployment_container_url}
        )
