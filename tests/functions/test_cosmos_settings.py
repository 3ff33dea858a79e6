"""The app's SDK client reads the binding's own setting, so local (a connection string) and Azure
(identity-based, keyless) need nothing else."""

from __future__ import annotations

import pytest
from azure.identity.aio import ManagedIdentityCredential
from chat import cosmos


async def test_identity_based_settings_make_a_keyless_client_as_the_app_identity():
    environ = {
        "CosmosDBConnection__accountEndpoint": "https://chat-cosmos.documents.azure.com:443/",
        "CosmosDBConnection__credential": "managedidentity",
        "CosmosDBConnection__clientId": "c-5678-client",
    }
    client = cosmos._client(environ)
    try:
        assert client.client_connection.url_connection == environ["CosmosDBConnection__accountEndpoint"]
        credential = client.client_connection.aad_credentials
        assert isinstance(credential, ManagedIdentityCredential)
        assert client.client_connection.master_key is None  # no key anywhere
    finally:
        await client.close()


def test_no_setting_is_a_named_deployment_error():
    with pytest.raises(cosmos.StoreUnavailable, match="CosmosDBConnection is not set"):
        cosmos._client({})


async def test_one_client_per_loop_and_setting(monkeypatch):
    monkeypatch.setenv("CosmosDBConnection", "AccountEndpoint=http://127.0.0.1:1/;AccountKey=a2V5;")
    first, second = cosmos.container(cosmos.MESSAGES), cosmos.container(cosmos.CONTROL)
    assert first.client_connection is second.client_connection
    await cosmos.close()
