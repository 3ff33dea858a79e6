"""Azure RBAC role assignments for the app's managed identity, with deterministic names.

A role assignment's name is a GUID that must be unique per scope. Deriving it (uuid5) from scope, role and
principal means a re-run or an import finds the same assignment instead of failing with RoleAssignmentExists,
and two stacks never collide.
"""

from __future__ import annotations

import uuid

import pulumi
from pulumi_azure_native import authorization

# Built-in role definition GUIDs (the same in every tenant).
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
SIGNALR_SERVICE_OWNER = "7e4f1700-ea5a-4f59-8f37-079cfe29dce3"
# Cosmos DB data-plane role (not Azure RBAC: it lives under the account as a sqlRoleDefinition).
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"

_NAMESPACE = uuid.UUID("4b1d3c52-8f0e-4c55-9a43-5c0a7e1c2d10")


def assignment_guid(scope: str, role: str, principal_id: str) -> str:
    """Stable GUID for (scope, role, principal): the same inputs always name the same assignment."""
    return str(uuid.uuid5(_NAMESPACE, f"{scope.lower()}|{role.lower()}|{principal_id.lower()}"))


def role_definition_id(subscription_id: str, role: str) -> str:
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def assign_role(
    name: str,
    *,
    scope: pulumi.Input[str],
    role: str,
    principal_id: pulumi.Input[str],
    subscription_id: pulumi.Input[str],
    parent: pulumi.Resource,
) -> authorization.RoleAssignment:
    """Grant `role` on `scope` to a managed identity (principal type ServicePrincipal, never the default
    User)."""
    scope_out = pulumi.Output.from_input(scope)
    principal_out = pulumi.Output.from_input(principal_id)
    return authorization.RoleAssignment(
        name,
        scope=scope_out,
        principal_id=principal_out,
        principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
        role_definition_id=pulumi.Output.from_input(subscription_id).apply(
            lambda s: role_definition_id(s, role)
        ),
        role_assignment_name=pulumi.Output.all(scope_out, principal_out).apply(
            lambda v: assignment_guid(v[0], role, v[1])
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
