"""The stack's configuration, read once and validated before any resource is declared.

Every rule here exists because Azure (or our own code) would otherwise accept a value at `pulumi preview` and
fail minutes into `pulumi up`, or fail later at run time. Errors name the config key, the rule and the
accepted values, so a person can fix the stack file without reading this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

PROJECT = "cosmic-chat"

# Python versions the Function App can run. 3.10 left support in October 2026; 3.13+ needs the 2.x
# `azure-functions` library, while functions/requirements.txt pins 1.x and the package vendors wheels built
# for the chosen version. 3.12 is the default: supported until October 2028 on Flex Consumption.
SUPPORTED_PYTHON_VERSIONS = ("3.11", "3.12")
DEFAULT_PYTHON_VERSION = "3.12"

# Flex Consumption: 2048 or 4096 MB per instance (512 is documented but rejected by
# Microsoft.Web/sites@2024-04-01+).
INSTANCE_MEMORY_CHOICES = (2048, 4096)
MAX_INSTANCES_RANGE = (40, 1000)

# SignalR Service SKUs and the unit counts each accepts.
_PAID_UNITS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
SIGNALR_SKUS: dict[str, tuple[str, tuple[int, ...]]] = {
    "Free_F1": ("Free", (1,)),
    "Standard_S1": ("Standard", _PAID_UNITS),
    "Premium_P1": ("Premium", _PAID_UNITS),
}

COSMOS_CAPACITY_MODES = ("serverless", "autoscale")
LOG_RETENTION_RANGE = (30, 730)

# Every key this program reads, with a one-line meaning (docs/deploy.md explains each at length).
KNOWN_KEYS: dict[str, str] = {
    "pythonVersion": "Python version of the Function App",
    "instanceMemoryMb": "memory per Flex Consumption instance",
    "maxInstances": "maximum Flex Consumption instances",
    "signalrSku": "SignalR Service SKU",
    "signalrUnits": "SignalR Service units",
    "cosmosCapacityMode": "serverless or autoscale",
    "cosmosMaxThroughput": "autoscale maximum RU/s for database chat",
    "messageTtlSeconds": "time to live of chat messages",
    "logRetentionDays": "Log Analytics retention",
    "appName": "explicit Function App name",
    "extraCorsOrigins": "more browser origins allowed by SignalR CORS",
    "deployCode": "package and deploy the code during pulumi up",
}

_APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,58}[a-z0-9]$")
_ORIGIN = re.compile(
    r"^https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:[0-9]{1,5})?$"
)


class ConfigError(ValueError):
    """A stack configuration value that would fail at deployment or at run time."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"config {key}: {message}")


@dataclass(frozen=True)
class StackConfig:
    """Validated settings for one stack; the only place the program reads configuration."""

    project: str
    stack: str
    location: str
    python_version: str = DEFAULT_PYTHON_VERSION
    instance_memory_mb: int = 2048
    max_instances: int = 40
    signalr_sku: str = "Free_F1"
    signalr_units: int = 1
    cosmos_capacity_mode: str = "serverless"
    cosmos_max_throughput: int | None = None
    message_ttl_seconds: int | None = None
    log_retention_days: int = 30
    app_name: str | None = None
    extra_cors_origins: tuple[str, ...] = ()
    deploy_code: bool = True
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def signalr_tier(self) -> str:
        return SIGNALR_SKUS[self.signalr_sku][0]

    @property
    def serverless_cosmos(self) -> bool:
        return self.cosmos_capacity_mode == "serverless"


def _int(key: str, raw: str) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ConfigError(key, f"must be a whole number, got {raw!r}") from None


def _int_in_range(key: str, raw: str, bounds: tuple[int, int], rule: str) -> int:
    """A whole number within bounds; `rule` names who sets the limit, with {low} and {high} placeholders."""
    low, high = bounds
    value = _int(key, raw)
    if not low <= value <= high:
        raise ConfigError(key, f"{value} is out of range; {rule.format(low=low, high=high)}")
    return value


def _bool(key: str, raw: str) -> bool:
    value = str(raw).strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ConfigError(key, f"must be true or false, got {raw!r}")


def parse_config(
    values: Mapping[str, str],
    *,
    project: str,
    stack: str,
    location: str | None,
) -> StackConfig:
    """Validate raw config strings (`key` without the project prefix) into a StackConfig.

    Pure function so tests can check every rule without a Pulumi runtime.
    """
    if not location:
        raise ConfigError(
            "azure-native:location",
            "is required: run `pulumi config set azure-native:location <region>` (for example westeurope)",
        )
    unknown = sorted(set(values) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigError(
            f"{project}:{unknown[0]}",
            f"is not a setting of this program (typo?); known keys: {', '.join(sorted(KNOWN_KEYS))}",
        )

    def key(name: str) -> str:
        return f"{project}:{name}"

    python_version = str(values.get("pythonVersion", DEFAULT_PYTHON_VERSION)).strip()
    if python_version not in SUPPORTED_PYTHON_VERSIONS:
        raise ConfigError(
            key("pythonVersion"),
            f"{python_version!r} is not supported; use one of {', '.join(SUPPORTED_PYTHON_VERSIONS)} "
            "(3.10 is out of support since October 2026; 3.13 and later need azure-functions 2.x, "
            "but functions/requirements.txt pins 1.x)",
        )

    memory = _int(key("instanceMemoryMb"), values.get("instanceMemoryMb", "2048"))
    if memory not in INSTANCE_MEMORY_CHOICES:
        raise ConfigError(
            key("instanceMemoryMb"),
            f"{memory} is not allowed; Flex Consumption accepts "
            f"{' or '.join(map(str, INSTANCE_MEMORY_CHOICES))} "
            "(512 is rejected by the current Microsoft.Web API)",
        )

    max_instances = _int_in_range(
        key("maxInstances"),
        values.get("maxInstances", "40"),
        MAX_INSTANCES_RANGE,
        "Flex Consumption allows {low} to {high}",
    )

    sku = str(values.get("signalrSku", "Free_F1")).strip()
    if sku not in SIGNALR_SKUS:
        raise ConfigError(key("signalrSku"), f"unknown SKU {sku!r}; use one of {', '.join(SIGNALR_SKUS)}")
    units = _int(key("signalrUnits"), values.get("signalrUnits", "1"))
    allowed_units = SIGNALR_SKUS[sku][1]
    if units not in allowed_units:
        raise ConfigError(
            key("signalrUnits"),
            f"{units} is not a unit count {sku} accepts; use one of {', '.join(map(str, allowed_units))}",
        )

    mode = str(values.get("cosmosCapacityMode", "serverless")).strip().lower()
    if mode not in COSMOS_CAPACITY_MODES:
        raise ConfigError(
            key("cosmosCapacityMode"), f"unknown mode {mode!r}; use one of {', '.join(COSMOS_CAPACITY_MODES)}"
        )
    max_throughput: int | None = None
    if "cosmosMaxThroughput" in values:
        if mode == "serverless":
            raise ConfigError(
                key("cosmosMaxThroughput"),
                "applies only with cosmosCapacityMode=autoscale "
                "(a serverless account has no throughput to set)",
            )
        max_throughput = _int(key("cosmosMaxThroughput"), values["cosmosMaxThroughput"])
    elif mode == "autoscale":
        max_throughput = 1000
    if max_throughput is not None and (max_throughput < 1000 or max_throughput % 1000):
        raise ConfigError(
            key("cosmosMaxThroughput"),
            f"{max_throughput} is not allowed; autoscale maximum RU/s is 1000 or more, in steps of 1000",
        )

    ttl: int | None = None
    if "messageTtlSeconds" in values:
        ttl = _int(key("messageTtlSeconds"), values["messageTtlSeconds"])
        if ttl < -1 or ttl == 0:
            raise ConfigError(
                key("messageTtlSeconds"),
                f"{ttl} is not allowed; use -1 (TTL on, messages never expire unless they carry a ttl) "
                "or a number of seconds of 1 or more (Cosmos DB rejects 0); leave unset for no TTL",
            )

    retention = _int_in_range(
        key("logRetentionDays"),
        values.get("logRetentionDays", "30"),
        LOG_RETENTION_RANGE,
        "Log Analytics keeps {low} to {high} days",
    )

    app_name = values.get("appName")
    if app_name is not None:
        app_name = str(app_name).strip()
        if not _APP_NAME.match(app_name):
            raise ConfigError(
                key("appName"),
                f"{app_name!r} is not a valid Function App name: 2 to 60 lowercase letters, digits and "
                "hyphens, "
                "not starting or ending with a hyphen",
            )

    origins: list[str] = []
    for origin in str(values.get("extraCorsOrigins", "")).split(","):
        origin = origin.strip().lower()
        if not origin:
            continue
        if not _ORIGIN.match(origin):
            raise ConfigError(
                key("extraCorsOrigins"),
                f"{origin!r} is not an origin; give comma-separated https://host[:port] values "
                "(no path, no trailing slash, no wildcard)",
            )
        origins.append(origin)

    deploy_code = _bool(key("deployCode"), values.get("deployCode", "true"))

    return StackConfig(
        project=project,
        stack=stack,
        location=location,
        python_version=python_version,
        instance_memory_mb=memory,
        max_instances=max_instances,
        signalr_sku=sku,
        signalr_units=units,
        cosmos_capacity_mode=mode,
        cosmos_max_throughput=max_throughput,
        message_ttl_seconds=ttl,
        log_retention_days=retention,
        app_name=app_name,
        extra_cors_origins=tuple(dict.fromkeys(origins)),
        deploy_code=deploy_code,
        tags={"project": project, "stack": stack},
    )


def _all_config() -> dict[str, str]:
    """Every config value the engine handed to this program, `namespace:key` → raw string."""
    from pulumi.runtime import config as runtime_config

    merged: dict[str, str] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return merged


def load_config(read_all: Callable[[], Mapping[str, str]] = _all_config) -> StackConfig:
    """Read this stack's config once (project namespace + azure-native:location) and validate it."""
    import pulumi

    project = pulumi.get_project()
    raw = read_all()
    prefix = f"{project}:"
    values = {k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}
    location = raw.get("azure-native:location")
    return parse_config(values, project=project, stack=pulumi.get_stack(), location=location)
