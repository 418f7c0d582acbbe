"""The compose stack and the container image: no container engine runs here,
so their structure is checked (the Compose specification schema, then what
the stack must keep: order, health checks, hardening, trace export)."""

import re
import subprocess

import yaml

from conftest import ROOT, VALUES

DEPLOY = ROOT / "deploy"
# The stack runs every service of the Helm chart.
SERVICES = sorted(VALUES["services"])


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_follows_the_compose_specification():
    out = subprocess.run(
        ["check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_service_runs_from_the_one_image_after_migration_with_a_health_check():
    stack = compose()["services"]
    images = {stack[name]["image"] for name in [*SERVICES, "migrate"]}
    assert images == {"${CX_IMAGE:-cx-suite:latest}"}
    assert stack["migrate"]["command"] == ["migrate", "all"]
    assert stack["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in SERVICES:
        service = stack[name]
        assert service["command"] == ["serve", name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
        assert service["healthcheck"]["test"] == ["CMD", "/usr/local/bin/cx", "health"]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        env = service["environment"]
        assert env["OTEL_SERVICE_NAME"] == f"cx-{name}"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
        # The collector's pipeline carries traces only.
        assert env["OTEL_METRICS_EXPORTER"] == "none"
        # Every service reaches every other by its CX_<NAME>_ENDPOINT.
        endpoints = {k: v for k, v in env.items() if k.endswith("_ENDPOINT") and k.startswith("CX_")}
        assert endpoints == {f"CX_{s.upper()}_ENDPOINT": f"http://{s}:50051" for s in SERVICES}
        assert "CX_NOT_DEPLOYED" not in env
    for store in ["postgres", "redis"]:
        assert stack[store]["healthcheck"]["test"][0] == "CMD"


def test_the_collector_forwards_traces_to_jaeger():
    stack = compose()["services"]
    collector = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    assert collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    (pipeline,) = collector["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["processors"][0] == "memory_limiter", "the limiter must come first"
    (exporter,) = pipeline["exporters"]
    assert collector["exporters"][exporter]["endpoint"] == "jaeger:4317"
    assert stack["otel-collector"]["volumes"] == ["./otel-collector.yaml:/etc/otelcol/config.yaml:ro"]
    assert "16686:16686" in stack["jaeger"]["ports"]


def test_the_image_is_built_in_stages_and_runs_cx_as_non_root_without_a_shell():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", dockerfile, re.MULTILINE)
    assert [name for _, name in stages] == ["chef", "planner", "builder", ""]
    # Dependencies are cooked from the recipe before the sources are copied in.
    builder = dockerfile.split("FROM chef AS builder", 1)[1].split("\nFROM ", 1)[0]
    assert builder.index("cargo chef cook") < builder.index("COPY . .") < builder.index("cargo build --release")
    runtime = dockerfile.rsplit("\nFROM ", 1)[1]
    assert runtime.startswith("gcr.io/distroless/cc-debian12:nonroot")
    assert "RUN " not in runtime, "the runtime image has no shell to run commands with"
    assert re.search(r"^USER 65532:65532$", runtime, re.MULTILINE)
    assert 'ENTRYPOINT ["/usr/local/bin/cx"]' in runtime
    assert 'CMD ["serve", "all"]' in runtime
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "target" in ignored or "/target" in ignored
