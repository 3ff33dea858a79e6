"""Config validation rules, checked on the pure parser (the program-level errors are in test_infra_stack)."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_config


def parse(**values: str):
    return parse_config(values, project="cosmic-chat", stack="dev", location="westeurope")


def test_defaults_are_the_cheap_dev_setup():
    cfg = parse()
    assert (cfg.python_version, cfg.instance_memory_mb, cfg.max_instances) == ("3.12", 2048, 40)
    assert (cfg.signalr_sku, cfg.signalr_tier, cfg.signalr_units) == ("Free_F1", "Free", 1)
    assert cfg.serverless_cosmos and cfg.cosmos_max_throughput is None
    assert cfg.message_ttl_seconds is None and cfg.deploy_code is True
    assert cfg.tags == {"project": "cosmic-chat", "stack": "dev"}


def test_autoscale_defaults_to_1000_and_accepts_steps_of_1000():
    assert parse(cosmosCapacityMode="autoscale").cosmos_max_throughput == 1000
    assert parse(cosmosCapacityMode="autoscale", cosmosMaxThroughput="6000").cosmos_max_throughput == 6000


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"cosmosMaxThroughput": "4000"}, "cosmosMaxThroughput", "only with cosmosCapacityMode=autoscale"),
        (
            {"cosmosCapacityMode": "autoscale", "cosmosMaxThroughput": "1500"},
            "cosmosMaxThroughput",
            "steps of 1000",
        ),
        ({"cosmosCapacityMode": "provisioned"}, "cosmosCapacityMode", "serverless, autoscale"),
        ({"signalrSku": "Free_F1", "signalrUnits": "2"}, "signalrUnits", "use one of 1"),
        ({"signalrSku": "Standard_S1", "signalrUnits": "11"}, "signalrUnits", "10, 20"),
        ({"maxInstances": "39"}, "maxInstances", "40 to 1000"),
        ({"maxInstances": "many"}, "maxInstances", "whole number"),
        ({"messageTtlSeconds": "0"}, "messageTtlSeconds", "rejects 0"),
        ({"messageTtlSeconds": "1.5"}, "messageTtlSeconds", "whole number"),
        ({"pythonVersion": "3.10"}, "pythonVersion", "out of support"),
        ({"logRetentionDays": "7"}, "logRetentionDays", "30 to 730"),
        ({"appName": "Bad_Name"}, "appName", "lowercase letters"),
        ({"deployCode": "maybe"}, "deployCode", "true or false"),
        ({"extraCorsOrigins": "https://a.example.org/path"}, "extraCorsOrigins", "no path"),
        ({"extraCorsOrigins": "http://a.example.org"}, "extraCorsOrigins", "https://host"),
        ({"extraCorsOrigins": "*"}, "extraCorsOrigins", "no wildcard"),
    ],
)
def test_each_rule_names_its_key(values, key, fragment):
    with pytest.raises(ConfigError) as caught:
        parse(**values)
    assert caught.value.key == f"cosmic-chat:{key}"
    assert fragment in str(caught.value)


def test_ttl_minus_one_means_on_without_default_expiry():
    assert parse(messageTtlSeconds="-1").message_ttl_seconds == -1


def test_extra_cors_origins_are_normalised_and_deduplicated():
    cfg = parse(
        extraCorsOrigins=" https://Chat.Example.org , https://chat.example.org,https://x.example.org:8443"
    )
    assert cfg.extra_cors_origins == ("https://chat.example.org", "https://x.example.org:8443")


@pytest.mark.parametrize("stack_file", ["Pulumi.dev.yaml", "Pulumi.prod.yaml"])
def test_stack_files_hold_only_known_keys_and_no_credentials(stack_file):
    """Plain config is committed: a key or connection string there would leak. The program needs none (the app
    is keyless); anything secret would have to be a `secure:` Pulumi secret."""
    import re
    from pathlib import Path

    import yaml

    from infra.config import KNOWN_KEYS

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / stack_file).read_text())["config"]
    values = {k.split(":", 1)[1]: str(v) for k, v in raw.items() if k.startswith("cosmic-chat:")}
    assert set(values) <= set(KNOWN_KEYS)
    parse_config(values, project="cosmic-chat", stack="x", location="westeurope")
    credential = re.compile(
        r"AccountKey=|SharedAccessSignature|AccessKey=|sig=|password|secret|://[^/]*:[^/]*@", re.I
    )
    for key, value in raw.items():
        assert not isinstance(value, dict), f"{key}: secrets are not expected in this program's config"
        assert not credential.search(f"{key}={value}"), key
