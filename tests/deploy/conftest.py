"""Shared helpers of the deployment tests: rendering the Helm chart."""

import pathlib
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "cx-suite"
GOLDEN = CHART / "tests" / "golden"
RELEASE = "cx"
NAMESPACE = "cx-suite"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["helm", *args], capture_output=True, text=True, check=check)


def template(*args: str) -> str:
    """The chart rendered as `helm install cx -n cx-suite` would apply it."""
    return helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args).stdout


def documents(rendered: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(rendered) if d]


# The chart's default values: its services are the entries of `services:`.
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


def only(*services: str) -> list[str]:
    """`helm template` arguments that disable every service but `services`."""
    others = [s for s in sorted(VALUES["services"]) if s not in services]
    return [arg for other in others for arg in ("--set", f"services.{other}.enabled=false")]


# The renders the tests check: name -> extra `helm template` arguments. Each
# service also runs alone (`<service>-only`): what it reaches, and what it is
# told is not deployed, must hold without any other.
RENDERS = {
    "default": [],
    "ha": ["-f", str(CHART / "values-ha.yaml")],
    "tls": ["--set", "tls.enabled=true", "--set", "tls.secretName=cx-tls"],
    **{f"{service}-only": only(service) for service in VALUES["services"]},
}


@pytest.fixture(scope="session", params=sorted(RENDERS))
def render(request) -> tuple[str, str]:
    """(name, manifest) of each checked render."""
    return request.param, template(*RENDERS[request.param])
