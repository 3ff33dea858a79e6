"""Every input key and every enum value the program sends is one the azure-native provider knows (issue 12,
checks 1-2).

The provider drops unknown input properties silently and checks no enum, so a typo in a plain dict such as
`siteConfig` reaches nothing and fails nothing, and a wrong enum value is an ARM 400 at `pulumi up`. The
schema comes from the installed SDK's generated input types (tests/infra/provider_schema.py); the inputs are
the ones the real program registers under mocks, for both stacks.
"""

from __future__ import annotations

import copy

import pytest
from pulumi.runtime import rpc
from pulumi_azure_native import agfoodplatform, web

from tests.infra import provider_schema
from tests.infra.infra_harness import Declared, Run, run_program, stack_config
from tests.infra.provider_schema import Obj, check_resource, walk

# Not azure-native resources, so not the provider's to check: the publish step (a dynamic provider of this
# project, infra/deploy.py) and the program's own component resources (inputs are never sent anywhere).
SKIPPED_TYPES = {"pulumi-python:dynamic:Resource"}
SKIPPED_PREFIXES = ("cosmic-chat:",)
WEBAPP = "azure-native:web:WebApp"
SITE_CONFIG_ARGS = "SiteConfigArgs (pulumi_azure_native.web._inputs)"


@pytest.fixture(scope="module", autouse=True)
def build_dir(tmp_path_factory):
    """The program builds the app package; keep it out of the worktree."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COSMIC_CHAT_BUILD_DIR", str(tmp_path_factory.mktemp("build")))
        yield


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    return {}


def stack_run(runs: dict[str, Run], stack: str) -> Run:
    """The real program under mocks, run once per stack for the whole module (a few seconds each)."""
    if stack not in runs:
        runs[stack] = run_program(stack_config(stack), stack=stack)
    return runs[stack]


@pytest.fixture(scope="module", params=["dev", "prod"])
def run(request, runs) -> Run:
    return stack_run(runs, request.param)


@pytest.fixture
def app_inputs(runs) -> dict:
    """A copy of the dev Function App's recorded inputs, for the negative controls to spoil."""
    return copy.deepcopy(stack_run(runs, "dev").one(WEBAPP).inputs)


def azure_native(run: Run) -> list[Declared]:
    return [r for r in run.resources if r.typ.startswith("azure-native:")]


def problems(run: Run) -> list[str]:
    return [p for r in azure_native(run) for p in check_resource(r.typ, r.name, r.inputs)]


def test_every_input_key_and_enum_value_is_known(run: Run):
    assert problems(run) == []


def unchecked_types(run: Run) -> set[str]:
    """Declared types that are neither checked against the SDK nor skipped by name."""
    return {
        r.typ
        for r in run.resources
        if not r.typ.startswith("azure-native:")
        and r.typ not in SKIPPED_TYPES
        and not r.typ.startswith(SKIPPED_PREFIXES)
    }


def test_no_resource_type_is_silently_skipped(run: Run):
    """Every declared type is checked (azure-native, its SDK input type found) or skipped by name."""
    assert unchecked_types(run) == set()
    checked = {r.typ for r in azure_native(run)}
    assert {t: provider_schema.resource_args(t).__name__ for t in checked} == {
        t: t.rsplit(":", 1)[1] + "Args" for t in checked
    }
    assert {
        WEBAPP,
        "azure-native:cosmosdb:DatabaseAccount",
        "azure-native:authorization:RoleAssignment",
    } <= checked


def test_a_resource_of_another_provider_is_reported_unchecked():
    other = Declared("random:index:RandomPassword", "pw", {}, {}, "urn:pw", "", [])
    dynamic = Declared("pulumi-python:dynamic:Resource", "code", {}, {}, "urn:code", "", [])
    assert unchecked_types(Run(resources=[other, dynamic])) == {"random:index:RandomPassword"}


def test_the_negative_controls_start_from_a_clean_app(app_inputs):
    assert check_resource(WEBAPP, "func", app_inputs) == []


def test_a_misspelled_key_in_a_plain_dict_fails(app_inputs):
    app_inputs["siteConfig"]["appSetings"] = app_inputs["siteConfig"].pop("appSettings")
    assert check_resource(WEBAPP, "func", app_inputs) == [
        f"{WEBAPP} func: siteConfig.appSetings is not an input of {SITE_CONFIG_ARGS}"
    ]


def test_a_misspelled_top_level_key_fails(app_inputs):
    app_inputs["httpOnly"] = app_inputs.pop("httpsOnly")
    assert check_resource(WEBAPP, "func", app_inputs) == [
        f"{WEBAPP} func: httpOnly is not an input of WebAppArgs (pulumi_azure_native.web.web_app)"
    ]


def test_a_wrong_enum_value_fails(runs):
    role = copy.deepcopy(stack_run(runs, "dev").of_type("azure-native:authorization:RoleAssignment")[0])
    role.inputs["principalType"] = "ManagedIdentity"
    assert check_resource(role.typ, role.name, role.inputs) == [
        f"azure-native:authorization:RoleAssignment {role.name}: principalType = 'ManagedIdentity' is not a "
        "value of PrincipalType (exact case: 'User', 'Group', 'ServicePrincipal', 'ForeignGroup', 'Device', "
        "'AgentUser', 'AgentServicePrincipal')"
    ]


def test_a_wrong_case_enum_value_fails(app_inputs):
    """`Union[str, RuntimeName]` in the SDK, but the value must be the SDK's exact spelling."""
    app_inputs["functionAppConfig"]["runtime"]["name"] = "Python"
    assert check_resource(WEBAPP, "func", app_inputs) == [
        f"{WEBAPP} func: functionAppConfig.runtime.name = 'Python' is not a value of RuntimeName "
        "(exact case: 'dotnet-isolated', 'node', 'java', 'powershell', 'python', 'custom')"
    ]


def test_a_wrong_case_value_of_a_closed_enum_fails(app_inputs):
    app_inputs["identity"]["type"] = "userAssigned"
    assert check_resource(WEBAPP, "func", app_inputs) == [
        f"{WEBAPP} func: identity.type = 'userAssigned' is not a value of ManagedServiceIdentityType (exact "
        "case: 'SystemAssigned', 'UserAssigned', 'SystemAssigned, UserAssigned', 'None')"
    ]


def test_list_items_are_walked(app_inputs):
    app_inputs["siteConfig"]["appSettings"][3]["vaule"] = app_inputs["siteConfig"]["appSettings"][3].pop(
        "value"
    )
    assert check_resource(WEBAPP, "func", app_inputs) == [
        f"{WEBAPP} func: siteConfig.appSettings[3].vaule is not an input of NameValuePairArgs "
        "(pulumi_azure_native.web._inputs)"
    ]


def test_lists_of_lists_are_walked(runs):
    messages = copy.deepcopy(
        stack_run(runs, "dev").one("azure-native:cosmosdb:SqlResourceSqlContainer", "messages")
    )
    messages.inputs["resource"]["indexingPolicy"]["compositeIndexes"][1][2]["order"] = "Descending"
    assert check_resource(messages.typ, "messages", messages.inputs) == [
        "azure-native:cosmosdb:SqlResourceSqlContainer messages: "
        "resource.indexingPolicy.compositeIndexes[1][2].order = 'Descending' is not a value of "
        "CompositePathSortOrder (exact case: 'ascending', 'descending')"
    ]


def test_map_values_are_walked():
    """A map of input types (OAuth custom parameters) and a map of strings (tags) are both looked into."""
    spoilt = {"customParameters": {"scope": {"valeu": "x"}}}
    assert walk(spoilt, Obj(web.ApiOAuthSettingsArgs), "") == [
        "customParameters['scope'].valeu is not an input of ApiOAuthSettingsParameterArgs "
        "(pulumi_azure_native.web._inputs)"
    ]
    assert walk({"tags": {"stack": {"name": "dev"}}}, Obj(web.WebAppArgs), "") == [
        "tags['stack'] is a dict, but the SDK types it as str"
    ]


def test_secret_values_are_checked_inside_their_envelope(app_inputs):
    """A secret is recorded wrapped; the check looks at what the provider gets, not at the envelope."""
    app_inputs["siteConfig"]["appSettings"][9]["value"] = secret("InstrumentationKey=...")
    assert check_resource(WEBAPP, "func", app_inputs) == []
    app_inputs["siteConfig"]["minTlsVersion"] = secret("TLS1_2")
    assert check_resource(WEBAPP, "func", app_inputs) == [
        f"{WEBAPP} func: siteConfig.minTlsVersion = 'TLS1_2' is not a value of SupportedTlsVersions "
        "(exact case: '1.0', '1.1', '1.2', '1.3')"
    ]


def secret(value: object) -> dict:
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def test_a_dict_where_a_list_belongs_fails(app_inputs):
    app_inputs["siteConfig"]["appSettings"] = {
        s["name"]: s["value"] for s in app_inputs["siteConfig"]["appSettings"]
    }
    assert check_resource(WEBAPP, "func", app_inputs) == [
        f"{WEBAPP} func: siteConfig.appSettings is a dict, but the SDK types it as a list"
    ]


def test_a_union_of_input_types_takes_either_and_reports_the_closest():
    """Discriminated types are `Union[AArgs, BArgs]` in the SDK: a value fits if it fits one of them."""
    shape = provider_schema.fields(agfoodplatform.DataConnectorPropertiesArgs)["credentials"]
    assert walk({"kind": "ApiKeyAuthCredentials", "apiKey": {}}, shape, "credentials") == []
    assert (
        walk({"kind": "OAuthClientCredentials", "clientId": "c", "clientSecret": {}}, shape, "credentials")
        == []
    )
    module = "pulumi_azure_native.agfoodplatform._inputs"
    assert walk({"kind": "OAuthClientCredentials", "clientld": "c"}, shape, "credentials") == [
        f"credentials.clientld is not an input of ApiKeyAuthCredentialsArgs ({module})",
        f"credentials.clientld is not an input of OAuthClientCredentialsArgs ({module})",
    ]


def test_an_unknown_resource_type_is_an_error_not_a_skip():
    with pytest.raises(LookupError, match=r"azure-native:web:WebAp: no pulumi_azure_native\.web\.WebAp "):
        provider_schema.resource_args("azure-native:web:WebAp")
