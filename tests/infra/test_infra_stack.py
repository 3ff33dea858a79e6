"""The Pulumi program run as a program under mocks: every resource, its security settings, roles and order."""

from __future__ import annotations

import re

import pytest

from infra import roles
from infra.app import (
    FLEX_REJECTED_SETTINGS,
    FLEX_REJECTED_SITE_CONFIG,
    default_app_name,
    scm_host_of,
    verify_host,
)
from tests.infra.infra_harness import SUBSCRIPTION, ChatMocks, Run, run_program, stack_config

WEBAPP = "azure-native:web:WebApp"
ROLE = "azure-native:authorization:RoleAssignment"
COSMOS_ROLE = "azure-native:cosmosdb:SqlResourceSqlRoleAssignment"
CONTAINER = "azure-native:cosmosdb:SqlResourceSqlContainer"
DYNAMIC = "pulumi-python:dynamic:Resource"
PRINCIPAL = "p-1234-principal"
CLIENT_ID = "c-5678-client"


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="module")
def dev(build_dir, monkeypatch_module) -> Run:
    monkeypatch_module.setenv("COSMIC_CHAT_BUILD_DIR", str(build_dir))
    return run_program(stack_config("dev"), stack="dev")


@pytest.fixture(scope="module")
def prod(build_dir, monkeypatch_module) -> Run:
    monkeypatch_module.setenv("COSMIC_CHAT_BUILD_DIR", str(build_dir))
    return run_program(stack_config("prod"), stack="prod")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def settings_of(run: Run) -> dict[str, str]:
    app = run.one(WEBAPP)
    return {s["name"]: s["value"] for s in app.inputs["siteConfig"]["appSettings"]}


def test_every_resource_is_declared_once(dev: Run):
    types = sorted(r.typ for r in dev.resources if not r.typ.startswith("cosmic-chat:"))
    assert types == sorted(
        [
            "azure-native:resources:ResourceGroup",
            "azure-native:managedidentity:UserAssignedIdentity",
            "azure-native:cosmosdb:DatabaseAccount",
            "azure-native:cosmosdb:SqlResourceSqlDatabase",
            CONTAINER,
            CONTAINER,
            CONTAINER,
            COSMOS_ROLE,
            "azure-native:signalrservice:SignalR",
            "azure-native:storage:StorageAccount",
            "azure-native:storage:BlobContainer",
            "azure-native:operationalinsights:Workspace",
            "azure-native:applicationinsights:Component",
            "azure-native:web:AppServicePlan",
            WEBAPP,
            "azure-native:web:WebAppFtpAllowed",
            "azure-native:web:WebAppScmAllowed",
            ROLE,
            ROLE,
            ROLE,
            DYNAMIC,
        ]
    )
    # One component per concern, and every Azure resource belongs to one of them.
    components = {r.urn for r in dev.resources if r.typ.startswith("cosmic-chat:infra:")}
    assert len(components) == 7
    for r in dev.resources:
        if not r.typ.startswith("cosmic-chat:"):
            assert r.parent in components or dev.by_urn(r.parent).parent in components, r.name


def test_tags_on_everything_taggable(dev: Run):
    untaggable = {ROLE, COSMOS_ROLE, DYNAMIC, "azure-native:storage:BlobContainer"}
    untaggable |= {"azure-native:web:WebAppFtpAllowed", "azure-native:web:WebAppScmAllowed"}
    for r in dev.resources:
        if r.typ.startswith("azure-native:") and r.typ not in untaggable:
            assert r.inputs.get("tags") == {"project": "cosmic-chat", "stack": "dev"}, r.typ


def test_everything_lands_in_the_configured_region(dev: Run):
    for r in dev.resources:
        if "location" in r.inputs:
            assert r.inputs["location"] == "westeurope", r.typ


def test_everything_lives_in_the_stack_resource_group(dev: Run):
    """`pulumi destroy` deletes the group last, which also removes anything Azure adds inside it by itself."""
    group = dev.one("azure-native:resources:ResourceGroup").state["name"]
    scoped_elsewhere = {"azure-native:resources:ResourceGroup", ROLE}
    for r in dev.resources:
        if r.typ.startswith("azure-native:") and r.typ not in scoped_elsewhere:
            assert r.inputs.get("resourceGroupName") == group, r.name
    # Subscription-level RBAC is scoped to resources of this group, never wider.
    for role in dev.of_type(ROLE):
        assert "/resourceGroups/" in role.inputs["scope"], role.name


def test_cosmos_account_is_serverless_keyless_session(dev: Run):
    account = dev.one("azure-native:cosmosdb:DatabaseAccount").inputs
    assert account["disableLocalAuth"] is True
    assert account["disableKeyBasedMetadataWriteAccess"] is True
    assert account["minimalTlsVersion"] == "Tls12"
    assert account["consistencyPolicy"] == {"defaultConsistencyLevel": "Session"}
    assert account["capabilities"] == [{"name": "EnableServerless"}]
    assert account["databaseAccountOfferType"] == "Standard"
    assert account["locations"] == [
        {"locationName": "westeurope", "failoverPriority": 0, "isZoneRedundant": False}
    ]
    database = dev.one("azure-native:cosmosdb:SqlResourceSqlDatabase").inputs
    assert database["resource"] == {"id": "chat"}
    assert "options" not in database, "a serverless account must not be given throughput"


def test_messages_container_partitioned_by_room_and_indexed_for_history(dev: Run):
    messages = dev.one(CONTAINER, "messages").inputs["resource"]
    assert messages["id"] == "messages"
    assert messages["partitionKey"] == {"paths": ["/room"], "kind": "Hash", "version": 2}
    assert messages["defaultTtl"] == 2592000
    policy = messages["indexingPolicy"]
    assert policy["indexingMode"] == "consistent" and policy["automatic"] is True
    assert {"path": "/text/?"} in policy["excludedPaths"]
    assert policy["includedPaths"] == [{"path": "/*"}]
    # ORDER BY c.createdAt DESC, c.id DESC needs exactly this composite (or its inverse).
    assert [
        {"path": "/createdAt", "order": "descending"},
        {"path": "/id", "order": "descending"},
    ] in policy["compositeIndexes"]
    assert [
        {"path": "/room", "order": "descending"},
        {"path": "/createdAt", "order": "descending"},
        {"path": "/id", "order": "descending"},
    ] in policy["compositeIndexes"]


def test_leases_container_exists_with_id_partition_key(dev: Run):
    leases = dev.one(CONTAINER, "leases").inputs
    assert leases["databaseName"] == "chat" and leases["containerName"] == "leases"
    assert leases["resource"]["partitionKey"] == {"paths": ["/id"], "kind": "Hash", "version": 2}


def test_control_container_by_id_with_item_ttl_and_no_index(dev: Run):
    """Rate-limit windows (each with its own `ttl`) and the identity signing key (none), read by id only."""
    control = dev.one(CONTAINER, "control").inputs["resource"]
    assert control["id"] == "control"
    assert control["partitionKey"] == {"paths": ["/id"], "kind": "Hash", "version": 2}
    assert control["defaultTtl"] == -1
    assert control["indexingPolicy"]["includedPaths"] == []
    assert control["indexingPolicy"]["excludedPaths"] == [{"path": "/*"}]


def test_the_local_stack_creates_the_containers_azure_has(dev: Run):
    """`python -m emulators` creates what infra/data.py declares: same names, partition keys and TTL switch
    (the messages' TTL is a per-stack setting, so only whether TTL is on for `control` is compared)."""
    from emulators.__main__ import CONTAINERS

    declared = {c.inputs["resource"]["id"]: c.inputs["resource"] for c in dev.of_type(CONTAINER)}
    assert set(declared) == set(CONTAINERS)
    for name, (path, _ttl) in CONTAINERS.items():
        assert declared[name]["partitionKey"]["paths"] == [path], name
    assert declared["control"]["defaultTtl"] == CONTAINERS["control"][1]


def test_cosmos_data_contributor_for_the_identity(dev: Run):
    assignment = dev.one(COSMOS_ROLE).inputs
    account_id = dev.one("azure-native:cosmosdb:DatabaseAccount").state["id"]
    assert (
        assignment["roleDefinitionId"]
        == f"{account_id}/sqlRoleDefinitions/00000000-0000-0000-0000-000000000002"
    )
    assert assignment["scope"] == account_id
    assert assignment["principalId"] == PRINCIPAL
    assert assignment["roleAssignmentId"] == roles.assignment_guid(
        account_id, roles.COSMOS_DATA_CONTRIBUTOR, PRINCIPAL
    )


def test_cosmos_role_assignment_waits_for_the_database_and_containers(dev: Run):
    """Cosmos DB locks the account for a data-plane role assignment (412 if a container is mid-creation)."""
    assignment = dev.one(COSMOS_ROLE)
    database = dev.one("azure-native:cosmosdb:SqlResourceSqlDatabase")
    for other in [database, *dev.of_type(CONTAINER)]:
        assert other.urn in assignment.dependencies, other.name


def test_signalr_serverless_keyless_cors_only_the_app_origin(dev: Run):
    signalr = dev.one("azure-native:signalrservice:SignalR").inputs
    assert signalr["sku"] == {"name": "Free_F1", "tier": "Free", "capacity": 1}
    assert {"flag": "ServiceMode", "value": "Serverless"} in signalr["features"]
    assert signalr["disableLocalAuth"] is True
    assert signalr["disableAadAuth"] is False
    app_name = dev.one(WEBAPP).inputs["name"]
    assert signalr["cors"] == {"allowedOrigins": [f"https://{app_name}.azurewebsites.net"]}
    assert dev.outputs["site_url"] == f"https://{app_name}.azurewebsites.net"


def test_storage_account_has_no_keys_no_public_blobs_tls12_https(dev: Run):
    account = dev.one("azure-native:storage:StorageAccount").inputs
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["enableHttpsTrafficOnly"] is True
    assert account["defaultToOAuthAuthentication"] is True
    container = dev.one("azure-native:storage:BlobContainer").inputs
    assert container["publicAccess"] == "None"


def test_monitoring_is_workspace_based_with_entra_only_ingestion(dev: Run):
    component = dev.one("azure-native:applicationinsights:Component").inputs
    workspace = dev.one("azure-native:operationalinsights:Workspace")
    assert component["workspaceResourceId"] == workspace.state["id"]
    assert component["disableLocalAuth"] is True
    assert workspace.inputs["retentionInDays"] == 30


def test_the_host_storage_grants_blob_only(dev: Run):
    """Least privilege (issue 12): no queue, table or file role, and no setting that points the host at them,
    as in the official Flex + Cosmos DB + Python sample (infra/storage.py)."""
    account = dev.one("azure-native:storage:StorageAccount").state["id"]
    on_storage = [r.inputs["roleDefinitionId"].rsplit("/", 1)[1] for r in dev.of_type(ROLE)
                  if r.inputs["scope"] == account]
    assert on_storage == [roles.STORAGE_BLOB_DATA_OWNER]
    host_settings = {k for k in settings_of(dev) if k.startswith("AzureWebJobsStorage__")}
    assert host_settings == {
        "AzureWebJobsStorage__blobServiceUri",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
    }


def test_every_azure_role_assignment_guid_scope_and_principal_type(dev: Run):
    expected = {
        "storage-blob-data-owner": (roles.STORAGE_BLOB_DATA_OWNER, "azure-native:storage:StorageAccount"),
        "signalr-service-owner": (roles.SIGNALR_SERVICE_OWNER, "azure-native:signalrservice:SignalR"),
        "monitoring-metrics-publisher": (
            roles.MONITORING_METRICS_PUBLISHER,
            "azure-native:applicationinsights:Component",
        ),
    }
    assert sorted(r.name for r in dev.of_type(ROLE)) == sorted(expected)
    names = set()
    for name, (guid, scope_type) in expected.items():
        role = dev.one(ROLE, name).inputs
        scope = dev.one(scope_type).state["id"]
        assert role["roleDefinitionId"] == (
            f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
        )
        assert role["scope"] == scope
        assert role["principalId"] == PRINCIPAL
        assert role["principalType"] == "ServicePrincipal"
        assert role["roleAssignmentName"] == roles.assignment_guid(scope, guid, PRINCIPAL)
        names.add(role["roleAssignmentName"])
    assert len(names) == len(expected)


def test_role_assignment_names_are_deterministic_and_distinct():
    a = roles.assignment_guid("/s/x", roles.STORAGE_BLOB_DATA_OWNER, "p")
    assert a == roles.assignment_guid("/S/X", roles.STORAGE_BLOB_DATA_OWNER, "P")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", a)
    assert a != roles.assignment_guid("/s/x", roles.SIGNALR_SERVICE_OWNER, "p")
    assert a != roles.assignment_guid("/s/y", roles.STORAGE_BLOB_DATA_OWNER, "p")
    assert a != roles.assignment_guid("/s/x", roles.STORAGE_BLOB_DATA_OWNER, "q")


def test_flex_plan_and_app_runtime_scale_and_security(dev: Run):
    plan = dev.one("azure-native:web:AppServicePlan").inputs
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["reserved"] is True and plan["kind"] == "functionapp"
    app = dev.one(WEBAPP).inputs
    assert app["kind"] == "functionapp,linux"
    assert app["httpsOnly"] is True
    assert app["serverFarmId"] == dev.one("azure-native:web:AppServicePlan").state["id"]
    assert app["siteConfig"]["minTlsVersion"] == "1.2"
    identity_id = dev.one("azure-native:managedidentity:UserAssignedIdentity").state["id"]
    assert app["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [identity_id]}
    config = app["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.12"}
    assert config["scaleAndConcurrency"] == {"maximumInstanceCount": 40, "instanceMemoryMB": 2048}
    # GA strategy: after a deployment every instance runs the new package, so the probe tests the new code.
    assert config["siteUpdateStrategy"] == {"type": "Recreate"}
    storage = config["deployment"]["storage"]
    blob = dev.one("azure-native:storage:StorageAccount").state["primaryEndpoints"]["blob"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == f"{blob}app-package"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": identity_id,
    }
    # FTP and SCM basic-auth publishing off (Flex rejects siteConfig.ftpsState).
    for typ in ("azure-native:web:WebAppFtpAllowed", "azure-native:web:WebAppScmAllowed"):
        policy = dev.one(typ).inputs
        assert policy["allow"] is False and policy["name"] == app["name"]


def test_app_settings_keyless_and_complete(dev: Run):
    settings = settings_of(dev)
    blob = dev.one("azure-native:storage:StorageAccount").state["primaryEndpoints"]["blob"]
    cosmos = dev.one("azure-native:cosmosdb:DatabaseAccount").state["documentEndpoint"]
    signalr = dev.one("azure-native:signalrservice:SignalR").state["hostName"]
    connection = dev.one("azure-native:applicationinsights:Component").state["connectionString"]
    assert settings == {
        "AzureWebJobsStorage__blobServiceUri": blob,
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
        "CosmosDBConnection__accountEndpoint": cosmos,
        "CosmosDBConnection__credential": "managedidentity",
        "CosmosDBConnection__clientId": CLIENT_ID,
        "AzureSignalRConnectionString__serviceUri": f"https://{signalr}",
        "AzureSignalRConnectionString__credential": "managedidentity",
        "AzureSignalRConnectionString__clientId": CLIENT_ID,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": connection,
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"ClientId={CLIENT_ID};Authorization=AAD",
        "AzureWebJobsDisableHomepage": "true",
        "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": "65536",
    }
    for value in settings.values():
        assert not re.search(r"AccountKey=|SharedAccessSignature|AccessKey=|sig=", value), value


def test_nothing_flex_rejects(dev: Run):
    app = dev.one(WEBAPP).inputs
    assert not set(settings_of(dev)) & FLEX_REJECTED_SETTINGS
    site_config_keys = {k.lower() for k in app["siteConfig"]}
    assert not site_config_keys & {k.lower() for k in FLEX_REJECTED_SITE_CONFIG}
    assert "netFrameworkVersion" not in app["siteConfig"]


def test_roles_and_containers_exist_before_the_app_and_the_deployment(dev: Run):
    app = dev.one(WEBAPP)
    deployment = dev.one(DYNAMIC)
    role_urns = {r.urn for r in dev.of_type(ROLE) + dev.of_type(COSMOS_ROLE)}
    assert len(role_urns) == 4
    assert role_urns <= set(app.dependencies)
    assert role_urns <= set(deployment.dependencies)
    assert app.urn in deployment.dependencies
    for container in dev.of_type(CONTAINER):
        assert container.urn in deployment.dependencies
    # The roles were registered (so created) before the app.
    order = [r.urn for r in dev.resources]
    assert max(order.index(u) for u in role_urns) < order.index(app.urn) < order.index(deployment.urn)


def test_deployment_resource_targets_the_scm_host_with_the_package_hash(dev: Run):
    deployment = dev.one(DYNAMIC).inputs
    app_name = dev.one(WEBAPP).inputs["name"]
    assert deployment["scm_url"] == f"https://{app_name}.scm.azurewebsites.net"
    assert deployment["site_url"] == f"https://{app_name}.azurewebsites.net"
    assert deployment["probe_path"] == "/api/rooms/general/messages?limit=1"
    assert re.fullmatch(r"[0-9a-f]{64}", deployment["sha256"])
    assert deployment["sha256"] == dev.outputs["package_sha256"]
    assert deployment["zip_path"].endswith("cosmic-chat-dev.zip")
    assert deployment["__provider"], "the provider travels pickled with the resource"


def test_outputs(dev: Run):
    app_name = dev.one(WEBAPP).inputs["name"]
    site = f"https://{app_name}.azurewebsites.net"
    assert dev.outputs["site_url"] == site
    assert dev.outputs["identities_url"] == f"{site}/api/identities"
    assert dev.outputs["function_app"] == app_name
    assert dev.outputs["resource_group"] == dev.one("azure-native:resources:ResourceGroup").state["name"]
    assert dev.outputs["cosmos_account"] == dev.one("azure-native:cosmosdb:DatabaseAccount").state["name"]
    assert dev.outputs["signalr_name"] == dev.one("azure-native:signalrservice:SignalR").state["name"]
    assert dev.outputs["storage_account"] == dev.one("azure-native:storage:StorageAccount").state["name"]
    assert dev.outputs["app_insights"] == dev.one("azure-native:applicationinsights:Component").state["name"]
    assert dev.outputs["identity_client_id"] == CLIENT_ID
    assert re.fullmatch(r"cosmic-chat-dev-[0-9a-f]{8}", app_name)


def test_prod_differs_from_dev_where_configured(dev: Run, prod: Run):
    signalr = prod.one("azure-native:signalrservice:SignalR").inputs
    assert signalr["sku"] == {"name": "Standard_S1", "tier": "Standard", "capacity": 1}
    account = prod.one("azure-native:cosmosdb:DatabaseAccount").inputs
    assert account.get("capabilities", []) == []
    database = prod.one("azure-native:cosmosdb:SqlResourceSqlDatabase").inputs
    assert database["options"] == {"autoscaleSettings": {"maxThroughput": 4000}}
    config = prod.one(WEBAPP).inputs["functionAppConfig"]
    assert config["scaleAndConcurrency"] == {"maximumInstanceCount": 100, "instanceMemoryMB": 4096}
    assert "defaultTtl" not in prod.one(CONTAINER, "messages").inputs["resource"]
    assert prod.one("azure-native:operationalinsights:Workspace").inputs["retentionInDays"] == 90
    # Same security posture in both.
    assert settings_of(prod).keys() == settings_of(dev).keys()
    assert prod.one(WEBAPP).inputs["name"] != dev.one(WEBAPP).inputs["name"]
    for r in prod.resources:
        if "tags" in r.inputs:
            assert r.inputs["tags"]["stack"] == "prod"


def test_deploy_code_off_declares_no_deployment(build_dir, monkeypatch):
    monkeypatch.setenv("COSMIC_CHAT_BUILD_DIR", str(build_dir))
    run = run_program(stack_config("dev", {"cosmic-chat:deployCode": "false"}), stack="dev")
    assert run.of_type(DYNAMIC) == []
    assert "package_sha256" not in run.outputs
    assert run.outputs["site_url"].startswith("https://cosmic-chat-dev-")


def test_explicit_app_name_drives_name_origin_and_outputs(build_dir, monkeypatch):
    monkeypatch.setenv("COSMIC_CHAT_BUILD_DIR", str(build_dir))
    config = stack_config("dev", {"cosmic-chat:appName": "my-chat-app", "cosmic-chat:deployCode": "false"})
    run = run_program(config, stack="dev")
    assert run.one(WEBAPP).inputs["name"] == "my-chat-app"
    cors = run.one("azure-native:signalrservice:SignalR").inputs["cors"]["allowedOrigins"]
    assert cors == ["https://my-chat-app.azurewebsites.net"]
    assert run.outputs["identities_url"] == "https://my-chat-app.azurewebsites.net/api/identities"


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ({"cosmic-chat:signalrSku": "Basic_B9"}, "cosmic-chat:signalrSku", "Free_F1"),
        ({"cosmic-chat:pythonVersion": "3.13"}, "cosmic-chat:pythonVersion", "3.11, 3.12"),
        ({"cosmic-chat:maxInstances": "5000"}, "cosmic-chat:maxInstances", "40 to 1000"),
        ({"cosmic-chat:instanceMemoryMb": "512"}, "cosmic-chat:instanceMemoryMb", "2048 or 4096"),
        ({"cosmic-chat:messageTtlSeconds": "-5"}, "cosmic-chat:messageTtlSeconds", "-1"),
        ({"cosmic-chat:maxInstancez": "50"}, "cosmic-chat:maxInstancez", "typo"),
    ],
)
def test_invalid_config_fails_the_program_naming_the_key(extra, key, words, build_dir, monkeypatch):
    monkeypatch.setenv("COSMIC_CHAT_BUILD_DIR", str(build_dir))
    with pytest.raises(Exception) as caught:
        run_program(stack_config("dev", extra), stack="dev")
    message = str(caught.value)
    assert key in message and words in message


def test_missing_location_is_an_error_naming_the_key(build_dir, monkeypatch):
    monkeypatch.setenv("COSMIC_CHAT_BUILD_DIR", str(build_dir))
    with pytest.raises(Exception, match="azure-native:location"):
        run_program(stack_config("dev", location=None), stack="dev")


def test_a_unique_default_hostname_fails_up_with_a_clear_message(build_dir, monkeypatch):
    """A `<name>-<hash>.<region>-01...` host name would not match SignalR CORS: stop loudly."""
    monkeypatch.setenv("COSMIC_CHAT_BUILD_DIR", str(build_dir))
    config = stack_config("dev", {"cosmic-chat:deployCode": "false"})
    with pytest.raises(
        Exception, match=r"default host name is .*-01\.azurewebsites\.net.*SignalR CORS allows"
    ):
        run_program(config, stack="dev", mocks=ChatMocks(unique_host=True))


def test_default_app_name_is_stable_valid_and_per_subscription():
    name = default_app_name("cosmic-chat", "dev", SUBSCRIPTION)
    assert name == default_app_name("cosmic-chat", "dev", SUBSCRIPTION)
    assert name != default_app_name("cosmic-chat", "dev", "another-subscription")
    assert name != default_app_name("cosmic-chat", "prod", SUBSCRIPTION)
    long = default_app_name("cosmic-chat", "Feature_Branch." + "x" * 80, SUBSCRIPTION)
    assert len(long) <= 60 and re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", long)


def test_host_checks_and_scm_host_selection():
    assert verify_host("app.azurewebsites.net", "app.azurewebsites.net") == "app.azurewebsites.net"
    unique = "app-abc.westeurope-01.azurewebsites.net"
    with pytest.raises(RuntimeError, match=f"config set cosmic-chat:extraCorsOrigins https://{unique}"):
        verify_host(unique, "app.azurewebsites.net")
    assert verify_host(unique, "app.azurewebsites.net", [f"https://{unique}"]) == unique
    states = [
        {"name": "app-h.westeurope-01.azurewebsites.net", "host_type": "Standard"},
        {"name": "app-h.scm.westeurope-01.azurewebsites.net", "host_type": "Repository"},
    ]
    assert scm_host_of(states) == "app-h.scm.westeurope-01.azurewebsites.net"
    with pytest.raises(RuntimeError, match="Repository"):
        scm_host_of(states[:1])


def test_extra_cors_origins_are_added_and_accept_a_unique_host(build_dir, monkeypatch):
    monkeypatch.setenv("COSMIC_CHAT_BUILD_DIR", str(build_dir))
    app_name = default_app_name("cosmic-chat", "dev", SUBSCRIPTION)
    unique = f"https://{app_name}-d8c2f0a1b3.westeurope-01.azurewebsites.net"
    config = stack_config(
        "dev",
        {
            "cosmic-chat:deployCode": "false",
            "cosmic-chat:extraCorsOrigins": f"{unique}, https://chat.example.org",
        },
    )
    run = run_program(config, stack="dev", mocks=ChatMocks(unique_host=True))
    cors = run.one("azure-native:signalrservice:SignalR").inputs["cors"]["allowedOrigins"]
    assert cors == [f"https://{app_name}.azurewebsites.net", unique, "https://chat.example.org"]
    assert run.outputs["site_url"] == unique
    assert run.outputs["identities_url"] == f"{unique}/api/identities"


def test_auto_names_carry_project_and_stack(dev: Run):
    expected = {
        "azure-native:resources:ResourceGroup": "cosmic-chat-dev",
        "azure-native:managedidentity:UserAssignedIdentity": "cosmic-chat-dev-identity",
        "azure-native:cosmosdb:DatabaseAccount": "cosmic-chat-dev-cosmos",
        "azure-native:signalrservice:SignalR": "cosmic-chat-dev-signalr",
        "azure-native:storage:StorageAccount": "stcosmicchatdev",
        "azure-native:operationalinsights:Workspace": "cosmic-chat-dev-logs",
        "azure-native:applicationinsights:Component": "cosmic-chat-dev-appi",
        "azure-native:web:AppServicePlan": "cosmic-chat-dev-plan",
    }
    for typ, logical in expected.items():
        assert dev.one(typ).name == logical, typ
    # Auto-naming is used (no explicit physical name) except where the name must be known up front.
    assert "accountName" not in dev.one("azure-native:cosmosdb:DatabaseAccount").inputs
    assert "accountName" not in dev.one("azure-native:storage:StorageAccount").inputs
    assert "resourceName" not in dev.one("azure-native:signalrservice:SignalR").inputs


@pytest.mark.parametrize("stack", ["dev", "Feature_Branch.With.A.Very-Long-Name-" + "x" * 60, "1st"])
def test_logical_names_fit_azure_rules_whatever_the_stack(stack):
    from infra.config import parse_config
    from infra.naming import MAX_LENGTH, SUFFIX_RESERVE, logical_name, storage_logical_name

    cfg = parse_config({}, project="cosmic-chat", stack=stack, location="westeurope")
    for kind, limit in MAX_LENGTH.items():
        name = logical_name(cfg, kind)
        assert len(name) + SUFFIX_RESERVE <= limit, (kind, name)
        assert re.fullmatch(r"[a-z][a-z0-9-]*", name), name
        assert name.endswith(f"-{kind}")
    storage = storage_logical_name(cfg)
    assert re.fullmatch(r"[a-z0-9]{3,15}", storage) and storage.startswith("st")


def test_the_request_body_limit_is_the_same_locally_and_in_azure(dev: Run):
    """The local host honours the same setting (docs/parity.md): what Azure refuses is refused locally."""
    import json
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "functions" / "local.settings.sample.json"
    local = json.loads(sample.read_text())["Values"]["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"]
    assert settings_of(dev)["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"] == local == "65536"
    assert "PYTHON_ENABLE_INIT_INDEXING" not in settings_of(dev)  # no HTTP streams (docs/parity.md)
