"""Push a zip to a Flex Consumption app's /api/publish endpoint, follow the deployment, then probe the site.

Plain async functions with the base URLs and the token getter injected, so the same code runs against the real
SCM host during `pulumi up` (infra/deploy.py) and against a local fake endpoint in tests.

Protocol (Kudu on Flex): `POST {scm}/api/publish?RemoteBuild=false` with `Authorization: Bearer <ARM token>`
and the zip as body answers 202 with the deployment id; `GET {scm}/api/deployments/{id}` reports `status` (4
success, 3 failed); `GET {scm}/api/deployments/{id}/log` lists log entries, each maybe with a `details_url`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ARM_SCOPE = "https://management.azure.com/.default"
STATUS_FAILED = 3
STATUS_SUCCESS = 4
# The identity's storage role may not have propagated yet: SCM then reports the blob upload failure.
TRANSIENT_MARKERS = ("BlobUploadFailedException",)
RETRY_STATUSES = frozenset({401, 403, 404, 408, 409, 429, 500, 502, 503, 504})

TokenGetter = Callable[[], str]
Log = Callable[[str], None]


class DeployError(RuntimeError):
    """The package could not be deployed; the message says why and what the service answered."""


class DeploymentFailed(DeployError):
    def __init__(self, deployment_id: str, status: Any, log_text: str) -> None:
        self.deployment_id = deployment_id
        self.status = status
        self.log_text = log_text
        super().__init__(f"deployment {deployment_id} failed (status {status}); deployment log:\n{log_text}")


class DeploymentTimeout(DeployError):
    pass


@dataclass(frozen=True)
class PublishOptions:
    """Timing knobs. Defaults fit Azure: role assignments can take minutes to propagate, cold starts
    seconds."""

    deployer: str = "cosmic-chat-pulumi"
    retry_timeout: float = 1200.0
    initial_backoff: float = 2.0
    max_backoff: float = 30.0
    poll_interval: float = 3.0
    poll_timeout: float = 900.0
    probe_timeout: float = 900.0
    request_timeout: float = 600.0


@dataclass(frozen=True)
class DeployOutcome:
    deployment_id: str
    attempts: int
    seconds: float
    probe_status: int | None


def _print(message: str) -> None:
    import sys

    print(f"deploy: {message}", file=sys.stderr, flush=True)


async def _auth(get_token: TokenGetter) -> dict[str, str]:
    # azure-identity's credential is synchronous (and may shell out to the az CLI): keep it off the loop.
    token = await asyncio.to_thread(get_token)
    return {"Authorization": f"Bearer {token}"}


def _transient(status: int, body: str) -> bool:
    return status in RETRY_STATUSES or any(marker in body for marker in TRANSIENT_MARKERS)


def _deployment_id(body: str, location: str | None) -> str:
    text = body.strip()
    if text:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        if isinstance(parsed, dict):
            parsed = parsed.get("id") or parsed.get("deploymentId") or ""
        if isinstance(parsed, str) and parsed.strip():
            return parsed.strip()
    if location:
        return location.rstrip("/").rsplit("/", 1)[-1]
    return "latest"


async def publish(
    session: aiohttp.ClientSession,
    scm_url: str,
    package: bytes,
    get_token: TokenGetter,
    options: PublishOptions = PublishOptions(),
    log: Log = _print,
) -> tuple[str, int]:
    """POST the zip; retry with back-off while access is still propagating. Returns (deployment id,
    attempts)."""
    url = f"{scm_url.rstrip('/')}/api/publish"
    params = {"RemoteBuild": "false", "Deployer": options.deployer}
    deadline = time.monotonic() + options.retry_timeout
    backoff = options.initial_backoff
    attempt = 0
    while True:
        attempt += 1
        headers = {**await _auth(get_token), "Content-Type": "application/zip"}
        try:
            async with session.post(
                url,
                params=params,
                data=package,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=options.request_timeout),
            ) as response:
                body = await response.text()
                if response.status in (200, 201, 202):
                    deployment_id = _deployment_id(body, response.headers.get("Location"))
                    log(
                        f"published {len(package) / 1e6:.1f} MB (attempt {attempt}): "
                        f"deployment {deployment_id}"
                    )
                    return deployment_id, attempt
                reason = f"HTTP {response.status}: {body.strip()[:500]}"
                if not _transient(response.status, body):
                    raise DeployError(f"POST {url} was refused, {reason}")
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if time.monotonic() + backoff > deadline:
            raise DeployError(
                f"POST {url} kept failing for {options.retry_timeout:.0f} s ({attempt} attempts); "
                f"last: {reason}. "
                "If this is 401/403, the deploying principal needs Website Contributor (or Contributor) "
                "on the app."
            )
        log(f"publish attempt {attempt} not accepted ({reason}); retrying in {backoff:.0f} s")
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, options.max_backoff)


async def deployment_log(
    session: aiohttp.ClientSession, scm_url: str, deployment_id: str, get_token: TokenGetter, limit: int = 50
) -> str:
    """The deployment's log as text lines, with each entry's details expanded (bounded)."""
    headers = await _auth(get_token)
    url = f"{scm_url.rstrip('/')}/api/deployments/{deployment_id}/log"
    lines: list[str] = []
    try:
        async with session.get(url, headers=headers) as response:
            if response.status != 200:
                return f"(log unavailable: HTTP {response.status})"
            entries = await response.json(content_type=None)
        for entry in (entries or [])[:limit]:
            lines.append(f"{entry.get('log_time', '')} {entry.get('message', '')}".strip())
            details = entry.get("details_url")
            if details:
                async with session.get(details, headers=headers) as response:
                    if response.status == 200:
                        for sub in (await response.json(content_type=None) or [])[:limit]:
                            lines.append(f"  {sub.get('log_time', '')} {sub.get('message', '')}".rstrip())
    except (aiohttp.ClientError, ValueError) as exc:
        lines.append(f"(log incomplete: {exc})")
    return "\n".join(lines) or "(empty log)"


async def wait_for_deployment(
    session: aiohttp.ClientSession,
    scm_url: str,
    deployment_id: str,
    get_token: TokenGetter,
    options: PublishOptions = PublishOptions(),
    log: Log = _print,
) -> dict[str, Any]:
    """Poll the deployment until it succeeds (returns its record) or fails (raises with the log)."""
    url = f"{scm_url.rstrip('/')}/api/deployments/{deployment_id}"
    deadline = time.monotonic() + options.poll_timeout
    last = "no answer yet"
    reported = None
    while time.monotonic() < deadline:
        try:
            async with session.get(url, headers=await _auth(get_token)) as response:
                if response.status == 200:
                    record = await response.json(content_type=None)
                    status = record.get("status")
                    if status == STATUS_SUCCESS:
                        log(f"deployment {deployment_id} succeeded")
                        return record
                    if status == STATUS_FAILED:
                        text = await deployment_log(session, scm_url, deployment_id, get_token)
                        raise DeploymentFailed(deployment_id, status, text)
                    progress = record.get("progress") or record.get("status_text") or ""
                    last = f"status {status} {progress}".strip()
                    if last != reported:
                        log(f"deployment {deployment_id}: {last}")
                        reported = last
                else:
                    last = f"HTTP {response.status}"
                    if response.status not in RETRY_STATUSES:
                        raise DeployError(f"GET {url} answered {last}: {(await response.text())[:500]}")
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        await asyncio.sleep(options.poll_interval)
    raise DeploymentTimeout(
        f"deployment {deployment_id} did not finish within {options.poll_timeout:.0f} s (last: {last})"
    )


async def probe(
    session: aiohttp.ClientSession,
    site_url: str,
    path: str,
    options: PublishOptions = PublishOptions(),
    log: Log = _print,
) -> int:
    """GET an API route until it answers 200: status 4 does not prove the host loaded the functions."""
    url = f"{site_url.rstrip('/')}{path}"
    deadline = time.monotonic() + options.probe_timeout
    delay = options.initial_backoff
    last = "no answer yet"
    while True:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=60)) as response:
                if response.status == 200:
                    log(f"probe {path}: 200")
                    return 200
                last = f"HTTP {response.status}: {(await response.text())[:200]}"
        except (TimeoutError, aiohttp.ClientError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() + delay > deadline:
            raise DeployError(
                f"the code is deployed but {url} did not answer 200 within {options.probe_timeout:.0f} s "
                f"(last: {last}); check the app's logs in Application Insights"
            )
        log(f"probe {path}: {last}; retrying in {delay:.0f} s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, options.max_backoff)


async def deploy(
    *,
    scm_url: str,
    site_url: str,
    zip_path: Path,
    get_token: TokenGetter,
    probe_path: str | None = "/api/rooms/general/messages?limit=1",
    options: PublishOptions = PublishOptions(),
    log: Log = _print,
) -> DeployOutcome:
    """Publish, wait for completion, probe. Raises DeployError (with the deployment log) on any failure."""
    started = time.monotonic()
    package = await asyncio.to_thread(zip_path.read_bytes)
    async with aiohttp.ClientSession() as session:
        deployment_id, attempts = await publish(session, scm_url, package, get_token, options, log)
        await wait_for_deployment(session, scm_url, deployment_id, get_token, options, log)
        status = await probe(session, site_url, probe_path, options, log) if probe_path else None
    return DeployOutcome(deployment_id, attempts, time.monotonic() - started, status)


def azure_token_getter() -> TokenGetter:
    """An ARM bearer-token source from azure-identity (az login, OIDC workload identity, managed
    identity...)."""
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)

    def get_token() -> str:
        return credential.get_token(ARM_SCOPE).token

    return get_token
