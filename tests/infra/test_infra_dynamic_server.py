"""The deploy provider inside Pulumi's own dynamic-provider server, over gRPC, as `pulumi up` runs it.

`python -m pulumi.dynamic` is the process the engine starts for Python dynamic resources: it unpickles
the provider from the resource's `__provider` property and serves Create/Diff/Update. Here it runs from the
project directory and deploys to the local fake SCM endpoint, which proves the pickled provider loads and
works outside the program's process.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from infra.deploy import PROBE_PATH, PublishProvider
from infra.publish import PublishOptions
from tests.infra.fake_kudu import FakeKudu, fake_token, running_in_thread

ROOT = Path(__file__).resolve().parents[2]
URN = "urn:pulumi:dev::cosmic-chat::cosmic-chat:infra:AppPackage$pulumi-python:dynamic:Resource::code"
OPTIONS = PublishOptions(initial_backoff=0.01, max_backoff=0.05, poll_interval=0.01, poll_timeout=10)


@pytest.fixture
def provider_server():
    process = subprocess.Popen(
        [sys.executable, "-m", "pulumi.dynamic"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield provider_pb2_grpc.ResourceProviderStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait(10)


def struct(props: dict):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def plain(message) -> dict:
    return rpc.deserialize_properties(message)


def test_pickled_provider_deploys_through_pulumis_dynamic_provider_server(provider_server, tmp_path: Path):
    package = tmp_path / "app.zip"
    package.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    provider = serialize_provider(PublishProvider(token_getter=fake_token, options=OPTIONS))
    with running_in_thread(FakeKudu()) as fake:
        inputs = {
            "__provider": provider,
            "scm_url": fake.base_url,
            "site_url": fake.base_url,
            "zip_path": str(package),
            "sha256": "a" * 64,
            "size": package.stat().st_size,
            "probe_path": PROBE_PATH,
        }
        created = provider_server.Create(
            provider_pb2.CreateRequest(urn=URN, properties=struct(inputs)), timeout=60
        )
        outs = plain(created.properties)
        assert outs["deployment_id"] == "dep-1" and created.id.endswith("#aaaaaaaaaaaa")
        assert len(fake.seen.publishes) == 1 and fake.seen.probes == 1

        same = provider_server.Diff(
            provider_pb2.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=struct(inputs)),
            timeout=30,
        )
        assert same.changes == provider_pb2.DiffResponse.DIFF_NONE

        changed_inputs = dict(inputs, sha256="b" * 64)
        changed = provider_server.Diff(
            provider_pb2.DiffRequest(
                id=created.id, urn=URN, olds=created.properties, news=struct(changed_inputs)
            ),
            timeout=30,
        )
        assert changed.changes == provider_pb2.DiffResponse.DIFF_SOME
        assert list(changed.replaces) == []

        updated = provider_server.Update(
            provider_pb2.UpdateRequest(
                id=created.id, urn=URN, olds=created.properties, news=struct(changed_inputs)
            ),
            timeout=60,
        )
        assert plain(updated.properties)["deployment_id"] == "dep-2"
        assert len(fake.seen.publishes) == 2


def test_failure_reaches_the_engine_with_the_deployment_log(provider_server, tmp_path: Path):
    from tests.infra.fake_kudu import Script

    package = tmp_path / "app.zip"
    package.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    provider = serialize_provider(PublishProvider(token_getter=fake_token, options=OPTIONS))
    script = Script(
        statuses=[3], log=[{"log_time": "t", "message": "Oryx: requirements could not be resolved"}]
    )
    with running_in_thread(FakeKudu(script)) as fake:
        inputs = {
            "__provider": provider,
            "scm_url": fake.base_url,
            "site_url": fake.base_url,
            "zip_path": str(package),
            "sha256": "c" * 64,
            "size": 22,
            "probe_path": PROBE_PATH,
        }
        with pytest.raises(grpc.RpcError) as caught:
            provider_server.Create(provider_pb2.CreateRequest(urn=URN, properties=struct(inputs)), timeout=60)
    details = caught.value.details()
    assert "DeploymentFailed" in details and "requirements could not be resolved" in details
