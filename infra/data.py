"""Cosmos DB for NoSQL: the `chat` database, its `messages`, `leases` and `control` containers, and data-plane
access."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import cosmosdb

from infra import roles
from infra.naming import logical_name
from infra.scope import Component, StackScope

DATABASE = "chat"
MESSAGES = "messages"
LEASES = "leases"
CONTROL = "control"


def messages_indexing_policy() -> cosmosdb.IndexingPolicyArgs:
    """Indexing tuned for the History query, the only query the app runs.

    History: `SELECT TOP n c.id, c.room, c.user, c.text, c.createdAt FROM c WHERE c.room = @room ORDER BY
    c.createdAt DESC, c.id DESC` (and `c.createdAt > @after ORDER BY ... ASC` for catch-up). A multi-property
    ORDER BY fails without a composite index matching it (or its exact inverse), so (createdAt DESC, id DESC)
    is required; (room, createdAt, id) lets the equality filter and the sort use one index. `text` is never
    filtered or sorted: excluding it makes every write cheaper (up to 2,000 characters of text would otherwise
    be indexed term by term).
    """
    desc = cosmosdb.CompositePathSortOrder.DESCENDING
    return cosmosdb.IndexingPolicyArgs(
        automatic=True,
        indexing_mode=cosmosdb.IndexingMode.CONSISTENT,
        included_paths=[cosmosdb.IncludedPathArgs(path="/*")],
        excluded_paths=[
            cosmosdb.ExcludedPathArgs(path="/text/?"),
            cosmosdb.ExcludedPathArgs(path="/authorId/?"),
            cosmosdb.ExcludedPathArgs(path='/"_etag"/?'),
        ],
        composite_indexes=[
            [
                cosmosdb.CompositePathArgs(path="/createdAt", order=desc),
                cosmosdb.CompositePathArgs(path="/id", order=desc),
            ],
            [
                cosmosdb.CompositePathArgs(path="/room", order=desc),
                cosmosdb.CompositePathArgs(path="/createdAt", order=desc),
                cosmosdb.CompositePathArgs(path="/id", order=desc),
            ],
        ],
    )


def control_indexing_policy() -> cosmosdb.IndexingPolicyArgs:
    """`control` is read and written by id only (rate-limit windows, the identity signing key): indexing
    nothing makes each rate-limit patch as cheap as a write can be."""
    return cosmosdb.IndexingPolicyArgs(
        automatic=True,
        indexing_mode=cosmosdb.IndexingMode.CONSISTENT,
        included_paths=[],
        excluded_paths=[cosmosdb.ExcludedPathArgs(path="/*")],
    )


class ChatData(Component):
    """The Cosmos DB account (keyless), database `chat`, containers `messages`, `leases` and `control`."""

    def __init__(self, name: str, scope: StackScope, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ChatData", name, scope, opts)
        cfg = self.cfg
        self.account = cosmosdb.DatabaseAccount(
            logical_name(cfg, "cosmos"),
            **scope.placement(),
            kind=cosmosdb.DatabaseAccountKind.GLOBAL_DOCUMENT_DB,
            database_account_offer_type=cosmosdb.DatabaseAccountOfferType.STANDARD,
            locations=[
                cosmosdb.LocationArgs(
                    location_name=cfg.location, failover_priority=0, is_zone_redundant=False
                )
            ],
            consistency_policy=cosmosdb.ConsistencyPolicyArgs(
                default_consistency_level=cosmosdb.DefaultConsistencyLevel.SESSION
            ),
            capabilities=[cosmosdb.CapabilityArgs(name="EnableServerless")] if cfg.serverless_cosmos else [],
            # Keyless: no account keys for data access, no key-based metadata writes, TLS 1.2 only.
            disable_local_auth=True,
            disable_key_based_metadata_write_access=True,
            minimal_tls_version=cosmosdb.MinimalTlsVersion.TLS12,
            public_network_access=cosmosdb.PublicNetworkAccess.ENABLED,
            opts=self.child,
        )

        # Serverless accounts must not be given throughput; autoscale is shared by both containers.
        database_options = (
            None
            if cfg.serverless_cosmos
            else cosmosdb.CreateUpdateOptionsArgs(
                autoscale_settings=cosmosdb.AutoscaleSettingsArgs(max_throughput=cfg.cosmos_max_throughput)
            )
        )
        self.database = cosmosdb.SqlResourceSqlDatabase(
            "chat-db",
            **scope.placement(location=False),
            account_name=self.account.name,
            database_name=DATABASE,
            resource=cosmosdb.SqlDatabaseResourceArgs(id=DATABASE),
            options=database_options,
            opts=self.child,
        )
        self.messages = self._container(
            MESSAGES,
            "/room",
            indexing_policy=messages_indexing_policy(),
            default_ttl=cfg.message_ttl_seconds,
        )
        # The change-feed processor's checkpoints. Identity-based connections cannot create containers, so the
        # trigger's create_lease_container_if_not_exists is off and the container is declared here.
        self.leases = self._container(LEASES, "/id")
        # The app's own small documents, by id (functions/chat/limits.py, identity.py). TTL on with no default
        # (-1): rate-limit windows carry their own `ttl`; the signing key has none and stays.
        self.control = self._container(
            CONTROL, "/id", indexing_policy=control_indexing_policy(), default_ttl=-1
        )

        principal = pulumi.Output.from_input(scope.principal_id)
        # A data-plane role assignment takes an exclusive lock on the account: created while the database or a
        # container is still being created, Cosmos DB refuses it with 412 PreconditionFailed ("another user
        # operation in progress which requires an exclusive lock"). Ordering it after them avoids the race.
        self.data_contributor = cosmosdb.SqlResourceSqlRoleAssignment(
            "cosmos-data-contributor",
            **scope.placement(location=False, tags=False),
            account_name=self.account.name,
            principal_id=principal,
            scope=self.account.id,
            role_definition_id=self.account.id.apply(
                lambda account_id: f"{account_id}/sqlRoleDefinitions/{roles.COSMOS_DATA_CONTRIBUTOR}"
            ),
            role_assignment_id=pulumi.Output.all(self.account.id, principal).apply(
                lambda v: roles.assignment_guid(v[0], roles.COSMOS_DATA_CONTRIBUTOR, v[1])
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.database, self.messages, self.leases, self.control]
            ),
        )
        self.endpoint = self.account.document_endpoint
        self.register_outputs({"account": self.account.name, "endpoint": self.endpoint})

    def _container(
        self, container: str, partition_key: str, **resource: object
    ) -> cosmosdb.SqlResourceSqlContainer:
        """A container of database `chat` (hash partition key, version 2 for keys longer than 100 bytes)."""
        return cosmosdb.SqlResourceSqlContainer(
            container,
            **self.scope.placement(location=False),
            account_name=self.account.name,
            database_name=self.database.name,
            container_name=container,
            resource=cosmosdb.SqlContainerResourceArgs(
                id=container,
                partition_key=cosmosdb.ContainerPartitionKeyArgs(
                    paths=[partition_key], kind=cosmosdb.PartitionKind.HASH, version=2
                ),
                **resource,
            ),
            opts=self.child,
        )
