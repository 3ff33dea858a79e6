"""Run the real `__main__.py` under Pulumi mocks and record what it declares.

No Pulumi CLI, no plugins, no Azure: the mock monitor records each registered resource's inputs, parent and
dependencies (URNs), the mocks fill in the output-only properties Azure would return (names, endpoints,
principal ids, host names), and `pulumi.export` is captured so outputs can be resolved and checked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "cosmic-chat"
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
TENANT = "99999999-8888-7777-6666-555555555555"


def stack_config(
    stack: str, extra: dict[str, str] | None = None, location: str | None = "westeurope"
) -> dict:
    """Config of a stack file (Pulumi.<stack>.yaml), as the engine would hand it to the program."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    raw = yaml.safe_load(path.read_text()) if path.exists() else {}
    config = {
        k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (raw.get("config") or {}).items()
    }
    if location and "azure-native:location" not in config:
        config["azure-native:location"] = location
    config.update(extra or {})
    return config


@dataclass
class Declared:
    typ: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    urn: str
    parent: str
    dependencies: list[str]


@dataclass
class Run:
    resources: list[Declared] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str | None = None) -> Declared:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, found {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Declared:
        return next(r for r in self.resources if r.urn == urn)


def _arm_id(typ: str, name: str) -> str:
    provider = typ.split(":")[1]
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-test/providers/Microsoft.{provider}/{name}"


class ChatMocks(pulumi.runtime.Mocks):
    """What Azure would answer: output-only properties derived from the inputs.

    `unique_host=True` plays a platform that gives the app a "secure unique default hostname"
    (`<name>-<hash>.<region>-01.azurewebsites.net`) instead of `<name>.azurewebsites.net`.
    """

    def __init__(self, unique_host: bool = False) -> None:
        super().__init__()
        self.unique_host = unique_host

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        inputs = dict(args.inputs)
        state = dict(inputs)
        typ, name = args.typ, args.name
        if typ == "pulumi-python:dynamic:Resource":
            return f"{name}-id", state
        resource_id = _arm_id(typ, name)
        # Auto-named resources get the logical name plus a suffix, like Pulumi's auto-naming.
        auto = f"{name}1a2b3c4d"
        if typ == "azure-native:resources:ResourceGroup":
            state["name"] = inputs.get("resourceGroupName", f"{name}-rg1a2b")
        elif typ == "azure-native:managedidentity:UserAssignedIdentity":
            state.update(name=auto, principalId="p-1234-principal", clientId="c-5678-client", tenantId=TENANT)
        elif typ == "azure-native:cosmosdb:DatabaseAccount":
            state.update(name=auto, documentEndpoint=f"https://{auto}.documents.azure.com:443/")
        elif typ == "azure-native:cosmosdb:SqlResourceSqlDatabase":
            state["name"] = inputs["databaseName"]
        elif typ == "azure-native:cosmosdb:SqlResourceSqlContainer":
            state["name"] = inputs["containerName"]
        elif typ == "azure-native:signalrservice:SignalR":
            state.update(name=auto, hostName=f"{auto}.service.signalr.net")
        elif typ == "azure-native:storage:StorageAccount":
            state.update(name=auto, primaryEndpoints={"blob": f"https://{auto}.blob.core.windows.net/"})
        elif typ == "azure-native:storage:BlobContainer":
            state["name"] = inputs["containerName"]
        elif typ == "azure-native:applicationinsights:Component":
            state.update(
                name=auto,
                connectionString="InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/",
            )
        elif typ == "azure-native:web:WebApp":
            site = inputs["name"]
            resource_id = (
                f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-test/providers/Microsoft.Web/sites/{site}"
            )
            # Identities go in as a list of ids and come back as a map id → {principalId, clientId}.
            identity = dict(inputs.get("identity") or {})
            identity["userAssignedIdentities"] = {
                uid: {"principalId": "p-1234-principal", "clientId": "c-5678-client"}
                for uid in identity.get("userAssignedIdentities", [])
            }
            host = f"{site}-d8c2f0a1b3.westeurope-01" if self.unique_host else site
            state.update(
                identity=identity,
                defaultHostName=f"{host}.azurewebsites.net",
                hostNameSslStates=[
                    {"name": f"{site}.azurewebsites.net", "hostType": "Standard"},
                    {"name": f"{site}.scm.azurewebsites.net", "hostType": "Repository"},
                ],
            )
        else:
            state.setdefault("name", auto)
        state["id"] = resource_id
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "subscriptionId": SUBSCRIPTION,
                "tenantId": TENANT,
                "clientId": "deployer",
                "objectId": "o",
            }
        raise AssertionError(f"unexpected invoke {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that also keeps each registration's parent and dependencies (mocks do not see them)."""

    def __init__(self, mocks: ChatMocks, run: Run) -> None:
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            registration = self.resources.get(response.urn)
            self.run.resources.append(
                Declared(
                    typ=request.type,
                    name=request.name,
                    inputs=rpc.deserialize_properties(request.object),
                    state=dict(registration.state) if registration else {},
                    urn=response.urn,
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                )
            )
        return response


def run_program(
    config: dict[str, str], stack: str = "dev", preview: bool = False, mocks: ChatMocks | None = None
) -> Run:
    """Execute __main__.py under mocks with this config; return what it declared and exported (resolved).

    Runs in a worker thread with its own event loop, so the caller's thread keeps its asyncio state.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_run_program, config, stack, preview, mocks).result()


def _run_program(config: dict[str, str], stack: str, preview: bool, mocks: ChatMocks | None) -> Run:
    run = Run()
    mocks = mocks or ChatMocks()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    exports: dict[str, Any] = {}
    original_export = pulumi.export
    try:
        pulumi.runtime.set_mocks(
            mocks, project=PROJECT, stack=stack, preview=preview, monitor=RecordingMonitor(mocks, run)
        )
        pulumi.runtime.set_all_config(config)

        def export(name: str, value: Any) -> None:
            exports[name] = value

        pulumi.export = export

        def program():
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
            names = sorted(exports)
            return pulumi.Output.all(*[exports[n] for n in names]).apply(
                lambda values: run.outputs.update(dict(zip(names, values, strict=True)))
            )

        pulumi.runtime.test(program)()
    finally:
        pulumi.export = original_export
        pulumi.runtime.set_all_config({})
        asyncio.set_event_loop(None)
        loop.close()
    return run
