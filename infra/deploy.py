"""The code package as part of the stack: build the zip, then deploy it with a Python dynamic resource.

The provider is pickled (dill) into the state and run by Pulumi's dynamic-provider process, which imports
`infra.deploy` from the project directory; everything it needs at run time (aiohttp, azure-identity, our
publish module) is imported inside its methods.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dynamic

from infra.config import StackConfig
from infra.package import PackageResult, build_package

PROBE_PATH = "/api/rooms/general/messages?limit=1"
# What makes a redeploy necessary: new bytes, or a different app to deploy to (the app was replaced).
DEPLOY_TRIGGERS = ("sha256", "scm_url", "site_url")


class PublishProvider(dynamic.ResourceProvider):
    """CRUD for "the package with this sha256 is what the app runs".

    `token_getter` and `options` exist for tests (a fake publish endpoint); in a real run they are None and
    the provider uses azure-identity's DefaultAzureCredential and the default timings.
    """

    def __init__(self, token_getter: Any = None, options: Any = None) -> None:
        super().__init__()
        self.token_getter = token_getter
        self.options = options

    def _deploy(self, props: dict[str, Any]) -> dict[str, Any]:
        import asyncio

        from infra import publish

        get_token = self.token_getter or publish.azure_token_getter()
        options = self.options or publish.PublishOptions()
        outcome = asyncio.run(
            publish.deploy(
                scm_url=props["scm_url"],
                site_url=props["site_url"],
                zip_path=Path(props["zip_path"]),
                get_token=get_token,
                probe_path=props.get("probe_path") or None,
                options=options,
            )
        )
        return {
            **props,
            "deployment_id": outcome.deployment_id,
            "publish_attempts": outcome.attempts,
            "deploy_seconds": round(outcome.seconds, 1),
        }

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        outs = self._deploy(props)
        return dynamic.CreateResult(id_=f"{props['site_url']}#{props['sha256'][:12]}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [key for key in DEPLOY_TRIGGERS if olds.get(key) != news.get(key)]
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs=self._deploy(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # The package lives in the app's deployment container, which goes with the storage account: nothing of
        # this resource outlives `pulumi destroy`.
        return None


class CodeDeployment(dynamic.Resource):
    """The deployed package (by sha256) on one Function App."""

    deployment_id: pulumi.Output[str]
    sha256: pulumi.Output[str]
    publish_attempts: pulumi.Output[int]
    deploy_seconds: pulumi.Output[float]

    def __init__(
        self,
        name: str,
        *,
        scm_url: pulumi.Input[str],
        site_url: pulumi.Input[str],
        package: PackageResult,
        probe_path: str = PROBE_PATH,
        provider: PublishProvider | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "scm_url": scm_url,
            "site_url": site_url,
            "zip_path": str(package.path),
            "sha256": package.sha256,
            "size": package.size,
            "probe_path": probe_path,
            "deployment_id": None,
            "publish_attempts": None,
            "deploy_seconds": None,
        }
        super().__init__(provider or PublishProvider(), name, props, opts)


def _pulumi_log(message: str) -> None:
    pulumi.log.info(f"package: {message}")


class AppPackage(pulumi.ComponentResource):
    """Build the zip while the program runs (preview shows whether the code changed), deploy it during
    `up`."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        *,
        root: Path,
        scm_host: pulumi.Input[str],
        site_host: pulumi.Input[str],
        depends_on: list[pulumi.Resource],
        build_dir: Path | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cosmic-chat:infra:AppPackage", name, None, opts)
        build_dir = build_dir or Path(os.environ.get("COSMIC_CHAT_BUILD_DIR", root / "build"))
        self.package = build_package(
            root / "functions",
            root / "www",
            build_dir / f"{cfg.project}-{cfg.stack}.zip",
            python_version=cfg.python_version,
            cache_dir=build_dir / "vendor",
            log=_pulumi_log,
        )
        self.deployment = CodeDeployment(
            "code",
            scm_url=pulumi.Output.concat("https://", scm_host),
            site_url=pulumi.Output.concat("https://", site_host),
            package=self.package,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        self.register_outputs({"sha256": self.package.sha256})
