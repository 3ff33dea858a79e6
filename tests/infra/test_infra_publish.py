"""Publishing and the deploy dynamic resource, against a real local HTTP server playing the SCM endpoint."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from infra import publish
from infra.deploy import PROBE_PATH, PublishProvider
from tests.infra.fake_kudu import TOKEN, FakeKudu, Script, running_in_thread, start

ROOT = Path(__file__).resolve().parents[2]
FAST = publish.PublishOptions(
    retry_timeout=10,
    initial_backoff=0.01,
    max_backoff=0.05,
    poll_interval=0.01,
    poll_timeout=5,
    probe_timeout=5,
)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    path = tmp_path / "app.zip"
    path.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    return path


async def serve(script: Script) -> tuple[FakeKudu, object]:
    fake = FakeKudu(script)
    runner = await start(fake)
    return fake, runner


async def deploy(fake: FakeKudu, package: Path, logs: list[str], options=FAST):
    return await publish.deploy(
        scm_url=fake.base_url,
        site_url=fake.base_url,
        zip_path=package,
        get_token=lambda: TOKEN,
        probe_path=PROBE_PATH,
        options=options,
        log=logs.append,
    )


async def test_success_publishes_the_zip_waits_and_probes(package: Path):
    fake, runner = await serve(Script(statuses=[1, 1, 4], probe_failures=2))
    logs: list[str] = []
    try:
        outcome = await deploy(fake, package, logs)
    finally:
        await runner.cleanup()
    assert outcome.deployment_id == "dep-1" and outcome.attempts == 1 and outcome.probe_status == 200
    [sent] = fake.seen.publishes
    assert sent["query"] == {"RemoteBuild": "false", "Deployer": "cosmic-chat-pulumi"}
    assert sent["content_type"] == "application/zip"
    assert sent["authorization"] == f"Bearer {TOKEN}"
    assert sent["sha256"] == hashlib.sha256(package.read_bytes()).hexdigest()
    assert fake.seen.polls == 3
    assert fake.seen.probes == 3, "the probe retries until the host answers 200"
    assert any("succeeded" in line for line in logs)


async def test_failed_deployment_raises_with_its_log(package: Path):
    script = Script(
        statuses=[1, 3],
        log=[
            {"log_time": "t1", "message": "Fetching changes."},
            {"log_time": "t2", "message": "Deployment failed.", "with_details": True},
        ],
        details=[{"log_time": "t3", "message": "ModuleNotFoundError: No module named 'aiohttp'"}],
    )
    fake, runner = await serve(script)
    try:
        with pytest.raises(publish.DeploymentFailed) as caught:
            await deploy(fake, package, [])
    finally:
        await runner.cleanup()
    text = str(caught.value)
    assert "dep-1 failed (status 3)" in text
    assert "Fetching changes." in text and "Deployment failed." in text
    assert "No module named 'aiohttp'" in text
    assert fake.seen.probes == 0, "no probe after a failed deployment"


async def test_polling_gives_up_after_the_timeout(package: Path):
    fake, runner = await serve(Script(statuses=[1]))
    options = publish.PublishOptions(
        initial_backoff=0.01, poll_interval=0.05, poll_timeout=0.4, probe_timeout=1
    )
    try:
        with pytest.raises(publish.DeploymentTimeout, match=r"did not finish within 0 s|did not finish"):
            await deploy(fake, package, [], options)
    finally:
        await runner.cleanup()
    assert 2 <= fake.seen.polls <= 20


async def test_403_and_blob_upload_failure_are_retried_until_roles_propagate(package: Path):
    script = Script(
        publish_failures=[
            (403, "Forbidden"),
            (403, "Forbidden"),
            (400, '{"Message": "BlobUploadFailedException: This request is not authorized"}'),
        ]
    )
    fake, runner = await serve(script)
    logs: list[str] = []
    try:
        outcome = await deploy(fake, package, logs)
    finally:
        await runner.cleanup()
    assert outcome.attempts == 4
    assert len(fake.seen.publishes) == 4
    assert sum("retrying" in line for line in logs) == 3
    assert any("BlobUploadFailedException" in line for line in logs)


async def test_a_real_rejection_is_not_retried(package: Path):
    fake, runner = await serve(Script(publish_failures=[(400, "Package is not a zip file")]))
    try:
        with pytest.raises(publish.DeployError, match="Package is not a zip file"):
            await deploy(fake, package, [])
    finally:
        await runner.cleanup()
    assert len(fake.seen.publishes) == 1


async def test_retries_stop_at_the_retry_budget(package: Path):
    fake, runner = await serve(Script(publish_failures=[(403, "Forbidden")] * 1000))
    options = publish.PublishOptions(retry_timeout=0.3, initial_backoff=0.05, max_backoff=0.05)
    try:
        with pytest.raises(publish.DeployError, match="kept failing") as caught:
            await deploy(fake, package, [], options)
    finally:
        await runner.cleanup()
    assert "Website Contributor" in str(caught.value)
    assert 2 <= len(fake.seen.publishes) <= 10


async def test_probe_that_never_answers_200_fails_the_deploy(package: Path):
    fake, runner = await serve(Script(probe_failures=10_000))
    options = publish.PublishOptions(
        initial_backoff=0.02, max_backoff=0.05, poll_interval=0.01, probe_timeout=0.3
    )
    try:
        with pytest.raises(publish.DeployError, match="did not answer 200"):
            await deploy(fake, package, [], options)
    finally:
        await runner.cleanup()


def props(fake: FakeKudu, package: Path, sha: str) -> dict:
    return {
        "scm_url": fake.base_url,
        "site_url": fake.base_url,
        "zip_path": str(package),
        "sha256": sha,
        "size": package.stat().st_size,
        "probe_path": PROBE_PATH,
    }


def test_dynamic_provider_deploys_once_and_again_only_when_sha256_changes(package: Path):
    provider = PublishProvider(token_getter=lambda: TOKEN, options=FAST)
    with running_in_thread(FakeKudu()) as fake:
        first = props(fake, package, "a" * 64)
        created = provider.create(first)
        assert created.outs["deployment_id"] == "dep-1"
        assert created.outs["publish_attempts"] == 1
        assert len(fake.seen.publishes) == 1

        same = provider.diff(created.id, created.outs, dict(first))
        assert same.changes is False, "unchanged sha256: the engine must not call update"
        assert len(fake.seen.publishes) == 1

        changed = provider.diff(created.id, created.outs, props(fake, package, "b" * 64))
        assert changed.changes is True and changed.replaces == []
        updated = provider.update(created.id, created.outs, props(fake, package, "b" * 64))
        assert updated.outs["deployment_id"] == "dep-2"
        assert len(fake.seen.publishes) == 2

        moved = dict(first, scm_url="https://other.scm.azurewebsites.net")
        assert provider.diff(created.id, created.outs, moved).changes is True, "a replaced app needs the code"
        provider.delete(created.id, created.outs)  # nothing to remove: the package goes with the storage
        assert len(fake.seen.publishes) == 2


def test_dynamic_provider_failure_carries_the_deployment_log(package: Path):
    provider = PublishProvider(token_getter=lambda: TOKEN, options=FAST)
    script = Script(statuses=[3], log=[{"log_time": "t", "message": "Syntax error in function_app.py"}])
    with running_in_thread(FakeKudu(script)) as fake:
        with pytest.raises(publish.DeploymentFailed, match=r"Syntax error in function_app\.py"):
            provider.create(props(fake, package, "c" * 64))


def test_serialised_provider_loads_in_a_fresh_process_from_the_project_directory():
    """Pulumi pickles the provider with dill and unpickles it in its provider process (cwd = project)."""
    from pulumi.dynamic.dynamic import serialize_provider

    blob = serialize_provider(PublishProvider())
    code = (
        "import base64, sys, dill; p = dill.loads(base64.b64decode(sys.stdin.read())); "
        "print(type(p).__module__, type(p).__name__, p.token_getter, p.options)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=blob,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    assert result.stdout.split() == ["infra.deploy", "PublishProvider", "None", "None"]
    assert base64.b64decode(blob)
