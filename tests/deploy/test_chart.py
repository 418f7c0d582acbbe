"""The Helm chart: lint, schema, Kubernetes 1.31 validity, golden renders and
the properties every Deployment must keep (security context, probes,
NetworkPolicy).

Golden renders are rewritten with `CX_UPDATE_GOLDEN=1 pytest tests/deploy`;
review the diff before committing it.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest
import yaml

from conftest import CHART, GOLDEN, NAMESPACE, RENDERS, VALUES, documents, helm, only, template

# Each service of the chart and its gRPC name: a new `services:` entry is
# checked like the others without a change here.
SERVICES = {name: svc["grpcService"] for name, svc in VALUES["services"].items()}
UID = 65532
GRPC_PORT = 50051


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def normalised(rendered: str) -> str:
    """The render with generated secrets (random per render) replaced by a placeholder."""
    for secret in of_kind(documents(rendered), "Secret").values():
        for key in ("jwt-secret", "service-secret", "postgres-password"):
            value = secret.get("stringData", {}).get(key)
            if value:
                rendered = rendered.replace(value, f"<generated {key}>")
    return rendered


def enabled_services(name: str) -> list[str]:
    """The services a render (conftest.RENDERS) runs."""
    return [name.removesuffix("-only")] if name.endswith("-only") else sorted(SERVICES)


def customer_data(service: str) -> bool:
    return VALUES["services"][service]["customerData"]


def calls_of(service: str) -> set[str]:
    """The services `service` calls, enabled or not: its `calls`, and for
    profile every other service holding customer data (it asks them to merge
    and erase customers)."""
    called = set(VALUES["services"][service]["calls"])
    if service == "profile":
        called |= {s for s in SERVICES if customer_data(s) and s != "profile"}
    return called


# --- lint and schema ---------------------------------------------------------


@pytest.mark.parametrize("values", [[], ["-f", str(CHART / "values-ha.yaml")]], ids=["default", "ha"])
def test_lint_is_clean(values):
    out = helm("lint", "--strict", str(CHART), *values)
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize(
    "setting, misspelt",
    [
        ("networkPolicy.enabeld=false", "enabeld"),
        ("services.profile.replcas=3", "replcas"),
        ("config.logFromat=text", "logFromat"),
        ("telemetry.otlpEndpoit=http://x:4317", "otlpEndpoit"),
    ],
)
def test_a_misspelt_value_is_rejected(setting, misspelt):
    out = helm("template", "cx", str(CHART), "--set", setting, check=False)
    assert out.returncode != 0, "the schema must refuse unknown keys"
    assert "values don't meet the specifications of the schema" in out.stderr
    assert misspelt in out.stderr


@pytest.mark.parametrize(
    "setting, field",
    [
        ("podAntiAffinity=always", "podAntiAffinity"),
        ("config.dbMaxConnections=1", "dbMaxConnections"),
        ("services.journey.replicas=-1", "replicas"),
        ("config.logFormat=xml", "logFormat"),
        ("services.journey.customerData=maybe", "customerData"),
    ],
)
def test_a_wrong_value_is_rejected(setting, field):
    out = helm("template", "cx", str(CHART), "--set", setting, check=False)
    assert out.returncode != 0
    assert field in out.stderr


def test_without_a_database_the_chart_says_what_to_set():
    out = helm("template", "cx", str(CHART), "--set", "postgresql.enabled=false", check=False)
    assert out.returncode != 0
    assert "set externalDatabase.url (production), postgresql.enabled=true (evaluation) or existingSecret" in out.stderr


# --- validity and golden renders ----------------------------------------------


def test_render_is_valid_kubernetes_1_31(render, tmp_path):
    name, rendered = render
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(rendered)
    out = subprocess.run(
        ["kubernetes-validate", "-k", "1.31.0", "--strict", "--quiet", str(manifest)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_render_matches_golden(render):
    name, rendered = render
    golden = GOLDEN / f"{name}.yaml"
    current = normalised(rendered)
    if os.environ.get("CX_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(current)
    assert golden.exists(), f"no golden render {golden}; run with CX_UPDATE_GOLDEN=1"
    assert current == golden.read_text(), f"{name} render changed; review and run with CX_UPDATE_GOLDEN=1"


def test_one_deployment_service_and_policy_per_enabled_service(render):
    name, rendered = render
    docs = documents(rendered)
    expected = {f"cx-cx-suite-{s}" for s in enabled_services(name)}
    evaluation = {"cx-cx-suite-redis"} if name != "ha" else set()
    assert set(of_kind(docs, "Deployment")) == expected | evaluation
    assert expected <= set(of_kind(docs, "Service"))
    assert expected <= set(of_kind(docs, "NetworkPolicy"))
    assert set(of_kind(docs, "PodDisruptionBudget")) == expected


# --- what every Deployment keeps ----------------------------------------------


def containers(deployment: dict) -> list[dict]:
    spec = deployment["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def test_every_pod_runs_non_root_read_only_without_capabilities(render):
    _, rendered = render
    docs = documents(rendered)
    workloads = {**of_kind(docs, "Deployment"), **of_kind(docs, "StatefulSet")}
    # The evaluation PostgreSQL and Redis run as their images' own users.
    uids = {"cx-cx-suite-postgresql": 70, "cx-cx-suite-redis": 999}
    for name, deployment in workloads.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == uids.get(name, UID), name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in containers(deployment):
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert ctx["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert ctx["capabilities"] == {"drop": ["ALL"]}, (name, container["name"])
            assert ctx["runAsNonRoot"] is True, (name, container["name"])
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, (name, container["name"])


def test_every_service_is_probed_over_grpc_health_and_migrated_first(render):
    name, rendered = render
    deployments = of_kind(documents(rendered), "Deployment")
    for service in enabled_services(name):
        deployment = deployments[f"cx-cx-suite-{service}"]
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert init["args"] == ["migrate", service]
        (main,) = deployment["spec"]["template"]["spec"]["containers"]
        assert main["args"] == ["serve", service]
        if name == "tls":
            # Asked by `cx health` in the pod (test_with_tls_…).
            assert main["readinessProbe"]["exec"]["command"][:4] == ["/usr/local/bin/cx", "health", "--service", SERVICES[service]]
            continue
        assert main["readinessProbe"]["grpc"] == {"port": GRPC_PORT, "service": SERVICES[service]}
        assert main["livenessProbe"]["grpc"] == {"port": GRPC_PORT, "service": ""}
        assert main["startupProbe"]["grpc"] == {"port": GRPC_PORT, "service": ""}
        assert "httpGet" not in main["readinessProbe"] and "exec" not in main["livenessProbe"]


def selects(policy: dict, deployment: dict) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def components(peers: list[dict]) -> set[str]:
    """The release's services among NetworkPolicy peers."""
    return {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for peer in peers
        if "app.kubernetes.io/component" in peer.get("podSelector", {}).get("matchLabels", {})
    }


def callers(policy: dict) -> set[str]:
    """The services a policy lets call the gRPC port."""
    rules = policy["spec"]["ingress"]
    return components([p for r in rules if r["ports"] == [{"port": "grpc", "protocol": "TCP"}] for p in r["from"]])


def reached(policy: dict) -> set[str]:
    """The components (services, evaluation stores) a policy lets its pods reach."""
    return components([p for rule in policy["spec"]["egress"] for p in rule.get("to", [])])


def env_of(deployment: dict) -> dict:
    """The service container's environment: name -> value (or valueFrom)."""
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in main["env"]}


def test_every_deployment_is_denied_by_default_and_allowed_what_it_needs(render):
    name, rendered = render
    docs = documents(rendered)
    policies = of_kind(docs, "NetworkPolicy")
    deny_all = policies["cx-cx-suite-deny-all"]
    assert deny_all["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny_all["spec"] and "egress" not in deny_all["spec"]
    enabled = enabled_services(name)
    for service in enabled:
        deployment = of_kind(docs, "Deployment")[f"cx-cx-suite-{service}"]
        assert selects(deny_all, deployment)
        own = policies[f"cx-cx-suite-{service}"]
        assert selects(own, deployment)
        assert own["spec"]["policyTypes"] == ["Ingress", "Egress"]
        ingress, scrape = own["spec"]["ingress"]
        assert ingress["ports"] == [{"port": "grpc", "protocol": "TCP"}]
        assert scrape["ports"] == [{"port": "metrics", "protocol": "TCP"}]
        prometheus = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
        assert scrape["from"] == [prometheus]
        assert callers(own) == {c for c in enabled if service in calls_of(c)}
        assert {"podSelector": {"matchLabels": {"cx-suite/client": "true"}}} in ingress["from"]
        egress = own["spec"]["egress"]
        internal = {"postgresql", "redis"} if name != "ha" else set()
        assert reached(own) == internal | {c for c in calls_of(service) if c in enabled}, service
        dns = egress[0]
        assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
        if name == "ha":
            # External database and cache: their ports, anywhere (no `to`).
            assert {"ports": [{"port": 5432, "protocol": "TCP"}, {"port": 6379, "protocol": "TCP"}]} in egress


def test_services_find_each_other_and_name_themselves_in_traces(render):
    name, rendered = render
    deployments = of_kind(documents(rendered), "Deployment")
    enabled = enabled_services(name)
    for service in enabled:
        env = env_of(deployments[f"cx-cx-suite-{service}"])
        assert env["OTEL_SERVICE_NAME"] == f"cx-{service}"
        attributes = dict(pair.split("=", 1) for pair in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
        assert attributes["service.namespace"] == NAMESPACE
        assert attributes["service.version"] == "0.1.0"
        assert attributes["k8s.namespace.name"] == NAMESPACE
        assert attributes["k8s.deployment.name"] == f"cx-cx-suite-{service}"
        assert attributes["k8s.pod.name"] == "$(K8S_POD_NAME)"
        assert env["K8S_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        endpoints = {k: v for k, v in env.items() if k.startswith("CX_") and k.endswith("_ENDPOINT")}
        called = calls_of(service)
        scheme = "https" if name == "tls" else "http"
        assert endpoints == {f"CX_{p.upper()}_ENDPOINT": f"{scheme}://cx-cx-suite-{p}-peers:{GRPC_PORT}" for p in called & set(enabled)}
        # A service refuses to start without the endpoint of one it owes
        # messages to (profile: customer-data services; journey: those taking
        # touchpoints) unless told it is not deployed (docs/CONFIGURATION.md).
        absent = sorted(called - set(enabled))
        assert env.get("CX_NOT_DEPLOYED") == (",".join(absent) or None), service
        secret = "cx-suite-secrets" if name == "ha" else "cx-cx-suite"
        for var, key in (
            ("CX_DATABASE_URL", "database-url"),
            ("CX_REDIS_URL", "redis-url"),
            ("CX_JWT_SECRET", "jwt-secret"),
            ("CX_SERVICE_SECRET", "service-secret"),
        ):
            assert env[var] == {"secretKeyRef": {"name": secret, "key": key}}


def with_service(tmp_path, entry: dict, *args: str) -> dict[str, dict[str, dict]]:
    """The default render with one more `services:` entry (a copy of
    journey's, changed by `entry`): Deployments and NetworkPolicies by name."""
    extra = {**VALUES["services"]["journey"], **entry}
    added = tmp_path / "added.yaml"
    added.write_text(json.dumps({"services": {"tickets": extra}}))
    docs = documents(template("-f", str(added), *args))
    return {"Deployment": of_kind(docs, "Deployment"), "NetworkPolicy": of_kind(docs, "NetworkPolicy")}


def not_deployed(but: list[str], added: str | None = None) -> str | None:
    """Profile's CX_NOT_DEPLOYED when only profile and `but` of the chart's
    services run: every other customer-data service, with `added` (sorted)."""
    absent = [s for s in SERVICES if customer_data(s) and s not in ["profile", *but]] + ([added] if added else [])
    return ",".join(sorted(absent)) or None


def test_a_new_customer_data_service_is_one_entry_and_called_by_profile(tmp_path):
    entry = {"grpcService": "cx.tickets.v1.TicketsService", "customerData": True, "calls": ["profile"]}
    # Next to profile and journey (any other service of the chart disabled).
    render = with_service(tmp_path, entry, *only("profile", "journey"))
    deployments, policies = render["Deployment"], render["NetworkPolicy"]
    profile = env_of(deployments["cx-cx-suite-profile"])
    assert profile["CX_TICKETS_ENDPOINT"] == f"http://cx-cx-suite-tickets-peers:{GRPC_PORT}"
    assert profile["CX_JOURNEY_ENDPOINT"] == f"http://cx-cx-suite-journey-peers:{GRPC_PORT}"
    assert profile.get("CX_NOT_DEPLOYED") == not_deployed(but=["journey"])
    assert env_of(deployments["cx-cx-suite-tickets"])["CX_PROFILE_ENDPOINT"] == f"http://cx-cx-suite-profile-peers:{GRPC_PORT}"
    # Only profile asks it: journey neither calls it nor is called by it.
    assert "CX_TICKETS_ENDPOINT" not in env_of(deployments["cx-cx-suite-journey"])
    assert reached(policies["cx-cx-suite-profile"]) == {"postgresql", "redis", "journey", "tickets"}
    assert callers(policies["cx-cx-suite-tickets"]) == {"profile"}
    assert reached(policies["cx-cx-suite-tickets"]) == {"postgresql", "redis", "profile"}
    assert callers(policies["cx-cx-suite-profile"]) == {"journey", "tickets"}

    # Disabled, it and journey are named to profile as not deployed (sorted).
    off = with_service(tmp_path, {**entry, "enabled": False}, *only("profile"))
    profile = env_of(off["Deployment"]["cx-cx-suite-profile"])
    assert profile["CX_NOT_DEPLOYED"] == not_deployed(but=[], added="tickets")  # "journey,tickets" today
    assert not any(k.endswith("_ENDPOINT") for k in profile)
    assert reached(off["NetworkPolicy"]["cx-cx-suite-profile"]) == {"postgresql", "redis"}


def test_a_service_without_customer_data_is_not_called_by_profile(tmp_path):
    entry = {"grpcService": "cx.tickets.v1.TicketsService", "customerData": False, "calls": []}
    render = with_service(tmp_path, entry)
    assert "CX_TICKETS_ENDPOINT" not in env_of(render["Deployment"]["cx-cx-suite-profile"])
    assert callers(render["NetworkPolicy"]["cx-cx-suite-tickets"]) == set()
    off = with_service(tmp_path, {**entry, "enabled": False})
    assert "CX_NOT_DEPLOYED" not in env_of(off["Deployment"]["cx-cx-suite-profile"])


def test_with_an_identity_providers_key_services_still_sign_their_calls():
    docs = documents(template("--set-string", "auth.jwtPublicKey=-----BEGIN PUBLIC KEY-----"))
    (secret,) = of_kind(docs, "Secret").values()
    assert "jwt-secret" not in secret["stringData"]
    assert re.fullmatch(r"[A-Za-z0-9]{48}", secret["stringData"]["service-secret"])
    deployments = of_kind(docs, "Deployment")
    for service in SERVICES:
        (container,) = deployments[f"cx-cx-suite-{service}"]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        assert env["CX_JWT_PUBLIC_KEY_FILE"] == "/etc/cx/jwt/jwt-public-key"
        assert "CX_JWT_SECRET" not in env
        assert env["CX_SERVICE_SECRET"] == {"secretKeyRef": {"name": "cx-cx-suite", "key": "service-secret"}}


def test_without_callers_a_service_admits_nobody_rather_than_everybody():
    # An empty `from` would admit every source: the rule must vanish instead.
    docs = documents(
        template("--set", "networkPolicy.clients=null", *only("profile"), "--set", "metrics.enabled=false")
    )
    assert of_kind(docs, "NetworkPolicy")["cx-cx-suite-profile"]["spec"]["ingress"] == []


def test_metrics_are_served_named_and_scraped_by_a_service_monitor_when_asked():
    docs = documents(template("--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.labels.release=kps"))
    (config,) = of_kind(docs, "ConfigMap").values()
    assert config["data"]["CX_METRICS_LISTEN"] == "0.0.0.0:9464"
    monitors = of_kind(docs, "ServiceMonitor")
    assert set(monitors) == {f"cx-cx-suite-{s}" for s in SERVICES}
    for service in SERVICES:
        name = f"cx-cx-suite-{service}"
        (main,) = of_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"]
        assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in main["ports"]
        ports = {p["name"]: p for p in of_kind(docs, "Service")[name]["spec"]["ports"]}
        assert ports["metrics"] == {"name": "metrics", "port": 9464, "targetPort": "metrics", "protocol": "TCP", "appProtocol": "http"}
        monitor = monitors[name]
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kps"
        assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == service
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}]
    # Off by default (it needs the Prometheus Operator's CRDs); no endpoint at all when metrics are off.
    assert of_kind(documents(template()), "ServiceMonitor") == {}
    off = documents(template("--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"))
    assert of_kind(off, "ServiceMonitor") == {}
    assert "CX_METRICS_LISTEN" not in next(iter(of_kind(off, "ConfigMap").values()))["data"]


def test_traces_go_to_the_configured_collector_and_nowhere_by_default():
    def config(*args):
        (cm,) = of_kind(documents(template(*args)), "ConfigMap").values()
        return cm["data"]

    assert config()["OTEL_TRACES_EXPORTER"] == "none"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in config()
    sent = config("--set", "telemetry.otlpEndpoint=http://tempo.observability:4317")
    assert sent["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tempo.observability:4317"
    assert "OTEL_TRACES_EXPORTER" not in sent
    # Tempo and Jaeger take no metrics: they go over OTLP only when asked.
    assert sent["OTEL_METRICS_EXPORTER"] == "none"
    both = config("--set", "telemetry.otlpEndpoint=http://collector:4317", "--set", "telemetry.exportMetrics=true")
    assert "OTEL_METRICS_EXPORTER" not in both


def test_ha_keeps_three_replicas_spread_and_two_through_drains():
    docs = documents(template(*RENDERS["ha"]))
    assert of_kind(docs, "Secret") == {}, "HA uses the existing Secret"
    assert of_kind(docs, "StatefulSet") == {}, "HA uses external PostgreSQL and Redis"
    for service in SERVICES:
        name = f"cx-cx-suite-{service}"
        assert of_kind(docs, "HorizontalPodAutoscaler")[name]["spec"]["minReplicas"] == 3
        assert of_kind(docs, "PodDisruptionBudget")[name]["spec"]["minAvailable"] == 2
        pod = of_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]
        (preferred,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        term = preferred["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == service
        spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
        assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
        assert spread["kubernetes.io/hostname"]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == service


def test_generated_secrets_are_long_and_used_by_the_database_url():
    (secret,) = of_kind(documents(template()), "Secret").values()
    data = secret["stringData"]
    assert re.fullmatch(r"[A-Za-z0-9]{48}", data["jwt-secret"])
    # The services' own key, generated apart from the user-token secret.
    assert re.fullmatch(r"[A-Za-z0-9]{48}", data["service-secret"])
    assert data["service-secret"] != data["jwt-secret"]
    assert re.fullmatch(r"[A-Za-z0-9]{48}", data["postgres-password"])
    assert data["database-url"] == f"postgres://cx:{data['postgres-password']}@cx-cx-suite-postgresql:5432/cx"
    assert data["redis-url"] == "redis://cx-cx-suite-redis:6379"


def notes(*args: str) -> str:
    """NOTES.txt as `helm install` prints it (that needs a cluster, so the
    test renders it through `tpl` in a copy of the chart)."""
    with tempfile.TemporaryDirectory() as tmp:
        chart = pathlib.Path(tmp) / "cx-suite"
        shutil.copytree(CHART, chart)
        (chart / "templates" / "NOTES.txt").rename(chart / "notes.src")
        (chart / "templates" / "notes-under-test.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
            'data: {notes: {{ tpl (.Files.Get "notes.src") . | quote }}}\n'
        )
        out = helm("template", "cx", str(chart), "--namespace", NAMESPACE, *args)
    return of_kind(documents(out.stdout), "ConfigMap")["notes"]["data"]["notes"]


def test_notes_tell_how_to_reach_the_services_and_get_a_token():
    text = notes()
    for service, grpc_service in SERVICES.items():
        assert f"{grpc_service}  at  cx-cx-suite-{service}.{NAMESPACE}.svc:{GRPC_PORT}" in text
    assert f"kubectl -n {NAMESPACE} port-forward svc/cx-cx-suite-journey {GRPC_PORT}:{GRPC_PORT}" in text
    assert f"kubectl -n {NAMESPACE} exec deploy/cx-cx-suite-journey -- cx token --tenant demo --roles writer" in text
    assert "WARNING: the PostgreSQL and/or Redis of this release are single pods" in text
    assert "Prometheus text on port 9464 (GET /metrics) of every service pod; set metrics.serviceMonitor.enabled=true" in text
    ha = notes("-f", str(CHART / "values-ha.yaml"), "--set", "telemetry.otlpEndpoint=http://tempo:4317")
    assert "WARNING" not in ha
    assert "exported over OTLP to http://tempo:4317" in ha


# --- documentation of values ----------------------------------------------------


def undocumented_values() -> set[str]:
    """Values (keys with a value on their line) with no comment above them or
    above a key they belong to. Service names fold into `services.*`: the
    first entry documents them all."""
    missing, commented = set(), set()
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in (CHART / "values.yaml").read_text().splitlines():
        match = re.match(r"^(\s*)([A-Za-z][\w-]*):(.*)$", line)
        if match:
            indent = len(match.group(1))
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, match.group(2))]
            names = [k for _, k in stack]
            if names[0] == "services" and len(names) > 1:
                names[1] = "*"
            path = ".".join(names)
            if previous.lstrip().startswith("#"):
                commented.add(path)
            value = match.group(3).split("#")[0].strip()
            documented = any(".".join(names[:n]) in commented for n in range(1, len(names) + 1))
            if value and not documented:
                missing.add(path)
        if line.strip():
            previous = line
    return missing


def test_every_value_is_documented():
    assert undocumented_values() == set()


def test_every_schema_property_is_described():
    def walk(node: dict, path: str):
        for name, child in node.get("properties", {}).items():
            assert child.get("description"), f"{path}{name} has no description"
            walk(child, f"{path}{name}.")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{path}*.")

    walk(json.loads((CHART / "values.schema.json").read_text()), "")


# --- details a platform team relies on -------------------------------------------


def pod_annotations(*args: str) -> dict[str, dict]:
    """Each service Deployment's pod annotations."""
    deployments = of_kind(documents(template(*args)), "Deployment")
    return {n: deployments[n]["spec"]["template"]["metadata"]["annotations"] for n in (f"cx-cx-suite-{s}" for s in SERVICES)}


def test_pods_restart_when_the_secret_changes_and_only_then():
    base = pod_annotations()["cx-cx-suite-journey"]["checksum/secret"]
    # Generated keys are random per render but kept across upgrades: the
    # checksum does not depend on them, so a plain re-render changes nothing.
    assert pod_annotations()["cx-cx-suite-journey"]["checksum/secret"] == base
    assert pod_annotations("--set", "config.log=debug")["cx-cx-suite-journey"]["checksum/secret"] == base
    for setting in (
        "auth.jwtSecret=" + "k" * 40,
        "auth.serviceSecret=" + "s" * 40,
        "postgresql.password=hunter22",
        "externalRedis.url=rediss://cache.example:6380",
    ):
        changed = pod_annotations("--set", setting)
        assert {a["checksum/secret"] for a in changed.values()} != {base}, setting
        assert len({a["checksum/secret"] for a in changed.values()}) == 1, "every service restarts"
    ha = pod_annotations(*RENDERS["ha"])["cx-cx-suite-journey"]["checksum/secret"]
    other = pod_annotations(*RENDERS["ha"], "--set", "existingSecret=cx-other")["cx-cx-suite-journey"]["checksum/secret"]
    assert ha != other, "pointing at another Secret restarts the pods"


def test_every_service_runs_as_its_own_service_account():
    docs = documents(
        template(
            "--set", "serviceAccount.annotations.team=cx",
            "--set", "services.kpi.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/kpi",
        )
    )
    accounts = of_kind(docs, "ServiceAccount")
    assert set(accounts) == {f"cx-cx-suite-{s}" for s in SERVICES}
    for service in SERVICES:
        name = f"cx-cx-suite-{service}"
        pod = of_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name
        account = accounts[name]
        assert account["automountServiceAccountToken"] is False
        assert account["metadata"]["labels"]["app.kubernetes.io/component"] == service
        expected = {"team": "cx"}
        if service == "kpi":
            expected["eks.amazonaws.com/role-arn"] = "arn:aws:iam::1:role/kpi"
        assert account["metadata"]["annotations"] == expected
    # Accounts made outside the chart: a shared one, or a service's own.
    outside = documents(
        template("--set", "serviceAccount.create=false", "--set", "serviceAccount.name=cx-shared",
                 "--set", "services.survey.serviceAccount.name=cx-survey-own")
    )
    assert of_kind(outside, "ServiceAccount") == {}
    names = {n: d["spec"]["template"]["spec"]["serviceAccountName"] for n, d in of_kind(outside, "Deployment").items() if "serviceAccountName" in d["spec"]["template"]["spec"]}
    assert names == {**{f"cx-cx-suite-{s}": "cx-shared" for s in SERVICES}, "cx-cx-suite-survey": "cx-survey-own"}
    default = documents(template("--set", "serviceAccount.create=false"))
    assert {of_kind(default, "Deployment")[f"cx-cx-suite-{s}"]["spec"]["template"]["spec"]["serviceAccountName"] for s in SERVICES} == {"default"}


@pytest.mark.parametrize(
    "calls, message",
    [
        ("{profle}", 'services.journey.calls names "profle", which is not an entry of services (journey, kpi, profile, segmentation, survey)'),
        ("{journey}", "services.journey.calls names the service itself"),
    ],
)
def test_a_call_to_no_service_fails_the_render(calls, message):
    # Silently dropped, a misspelt peer would lose journey its endpoint, its
    # network rule and the touchpoints it offers that service.
    out = helm("template", "cx", str(CHART), "--set", f"services.journey.calls={calls}", check=False)
    assert out.returncode != 0
    assert message in out.stderr
    # Past the schema's bounds, the name is refused by the schema.
    long = helm("template", "cx", str(CHART), "--set", f"services.journey.calls={{{'a' * 41}}}", check=False)
    assert long.returncode != 0 and "values don't meet the specifications of the schema" in long.stderr


def dns_rule(docs: list[dict], service: str = "journey") -> dict:
    return of_kind(docs, "NetworkPolicy")[f"cx-cx-suite-{service}"]["spec"]["egress"][0]


def test_dns_egress_follows_the_clusters_resolver():
    kube_dns = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    assert dns_rule(documents(template())) == {
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
        "to": [kube_dns],
    }
    # NodeLocal DNSCache answers on a link-local address beside kube-dns.
    local = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    local.write(json.dumps({"networkPolicy": {"dns": {"to": [kube_dns, {"ipBlock": {"cidr": "169.254.20.10/32"}}], "ports": [53]}}}))
    local.close()
    assert dns_rule(documents(template("-f", local.name)))["to"][1] == {"ipBlock": {"cidr": "169.254.20.10/32"}}
    # OpenShift's DNS pods listen on 5353 in their own namespace.
    openshift = documents(
        template(
            "--set", "networkPolicy.dns.to[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=openshift-dns",
            "--set", "networkPolicy.dns.ports={5353}",
        )
    )
    assert dns_rule(openshift) == {
        "ports": [{"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}],
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}}}],
    }
    # No peers: any resolver, on the given ports only.
    anywhere = dns_rule(documents(template("--set-json", "networkPolicy.dns.to=[]")))
    assert anywhere == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}


def test_topology_spread_honours_taints_and_spreads_each_rollout():
    deployments = of_kind(documents(template(*RENDERS["ha"])), "Deployment")
    for service in SERVICES:
        pod = deployments[f"cx-cx-suite-{service}"]["spec"]["template"]["spec"]
        assert len(pod["topologySpreadConstraints"]) == 2
        for constraint in pod["topologySpreadConstraints"]:
            # A tainted node the pods may not run on is no spread domain:
            # otherwise its zero pods would hold DoNotSchedule at maxSkew.
            assert constraint["nodeTaintsPolicy"] == "Honor"
            assert constraint["matchLabelKeys"] == ["pod-template-hash"]
    # What the user sets wins.
    own = documents(template(*RENDERS["ha"], "--set", "topologySpreadConstraints[0].nodeTaintsPolicy=Ignore",
                             "--set", "topologySpreadConstraints[0].maxSkew=2",
                             "--set", "topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
                             "--set", "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule"))
    first = of_kind(own, "Deployment")["cx-cx-suite-kpi"]["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
    assert first["nodeTaintsPolicy"] == "Ignore" and first["maxSkew"] == 2


def test_services_call_each_others_ready_pods_through_a_headless_service():
    docs = documents(template())
    services = of_kind(docs, "Service")
    for service in SERVICES:
        own, peers = services[f"cx-cx-suite-{service}"], services[f"cx-cx-suite-{service}-peers"]
        # Clients keep the ClusterIP; services resolve the pods themselves.
        assert "clusterIP" not in own["spec"]
        assert peers["spec"]["clusterIP"] == "None"
        assert peers["spec"]["selector"] == own["spec"]["selector"]
        assert not peers["spec"].get("publishNotReadyAddresses"), "only ready pods are called"
        assert peers["spec"]["ports"] == [{"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"}]
    (config,) = of_kind(docs, "ConfigMap").values()
    assert (config["data"]["CX_PEER_REFRESH"], config["data"]["CX_SHUTDOWN_DELAY"]) == ("5s", "20s")


@pytest.mark.parametrize(
    "delay, grace, seconds",
    [("20s", "20s", 45), ("1m30s", "500ms", 96), ("0s", "1h", 3605)],
)
def test_a_stopping_pod_has_time_to_keep_serving_then_drain(delay, grace, seconds):
    docs = documents(template("--set", f"config.shutdownDelay={delay}", "--set", f"config.shutdownGrace={grace}"))
    for service in SERVICES:
        pod = of_kind(docs, "Deployment")[f"cx-cx-suite-{service}"]["spec"]["template"]["spec"]
        # The delay, the grace, then 5 s before the kubelet kills the process.
        assert pod["terminationGracePeriodSeconds"] == seconds
        (main,) = pod["containers"]
        # Readiness fails within 6 s of NOT_SERVING, well inside the delay.
        assert main["readinessProbe"]["periodSeconds"] * main["readinessProbe"]["failureThreshold"] == 6


def test_with_tls_services_serve_and_call_over_mutual_tls_and_probe_with_cx_health():
    docs = documents(template("--set", "tls.enabled=true", "--set", "tls.secretName=cx-tls"))
    for service, grpc_service in SERVICES.items():
        name = f"cx-cx-suite-{service}"
        pod = of_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]
        assert {"name": "tls", "secret": {"secretName": "cx-tls"}} in pod["volumes"]
        for container in containers(of_kind(docs, "Deployment")[name]):
            assert {"name": "tls", "mountPath": "/etc/cx/tls", "readOnly": True} in container["volumeMounts"]
        env = env_of(of_kind(docs, "Deployment")[name])
        assert env["CX_TLS_CERT_FILE"] == "/etc/cx/tls/tls.crt" and env["CX_TLS_KEY_FILE"] == "/etc/cx/tls/tls.key"
        assert env["CX_TLS_CLIENT_CA_FILE"] == "/etc/cx/tls/ca.crt"
        assert env["CX_TLS_SERVER_NAME"] == name
        assert (env["CX_PEER_CA_FILE"], env["CX_PEER_CLIENT_CERT_FILE"]) == ("/etc/cx/tls/ca.crt", "/etc/cx/tls/tls.crt")
        endpoints = {k: v for k, v in env.items() if k.endswith("_ENDPOINT")}
        assert endpoints and all(v.startswith("https://") and v.endswith("-peers:50051") for v in endpoints.values())
        (main,) = pod["containers"]
        # Kubelet gRPC probes cannot speak TLS: the pod asks itself.
        assert main["readinessProbe"]["exec"]["command"] == ["/usr/local/bin/cx", "health", "--service", grpc_service, "--timeout", "2s"]
        assert main["livenessProbe"]["exec"]["command"][:4] == ["/usr/local/bin/cx", "health", "--service", ""]
        assert "grpc" not in main["startupProbe"]
    # Without client certificates: TLS, but any client may connect.
    open_tls = documents(template("--set", "tls.enabled=true", "--set", "tls.secretName=cx-tls", "--set", "tls.clientCertificates=false"))
    assert "CX_TLS_CLIENT_CA_FILE" not in env_of(of_kind(open_tls, "Deployment")["cx-cx-suite-kpi"])
    # TLS needs its Secret.
    out = helm("template", "cx", str(CHART), "--set", "tls.enabled=true", check=False)
    assert out.returncode != 0 and "secretName" in out.stderr


def test_extra_env_and_volumes_reach_every_service_for_a_managed_databases_ca():
    values = {
        "extraEnv": {"CX_REDIS_CA_FILE": "/etc/cx/ca/redis.pem"},
        "extraVolumes": [{"name": "ca", "secret": {"secretName": "managed-ca"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/cx/ca", "readOnly": True}],
        "services": {"survey": {"env": {"CX_REDIS_CA_FILE": "/etc/cx/ca/survey-redis.pem"}}},
    }
    extra = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    extra.write(json.dumps(values))
    extra.close()
    docs = documents(template("-f", extra.name))
    for service in SERVICES:
        deployment = of_kind(docs, "Deployment")[f"cx-cx-suite-{service}"]
        # A service's own env wins over the shared one.
        expected = "/etc/cx/ca/survey-redis.pem" if service == "survey" else "/etc/cx/ca/redis.pem"
        assert env_of(deployment)["CX_REDIS_CA_FILE"] == expected
        assert {"name": "ca", "secret": {"secretName": "managed-ca"}} in deployment["spec"]["template"]["spec"]["volumes"]
        for container in containers(deployment):
            assert {"name": "ca", "mountPath": "/etc/cx/ca", "readOnly": True} in container["volumeMounts"]


# --- dashboards and alerts ---------------------------------------------------------

# What every pod serves on its metrics port (crates/runtime/src/metrics.rs
# tests the same names), and what kube-state-metrics adds.
SERVED = {
    "rpc_server_duration_milliseconds_bucket",
    "rpc_server_duration_milliseconds_count",
    "rpc_server_duration_milliseconds_sum",
    "grpc_server_handled_total",
    "cx_outbox_pending",
    "cx_outbox_oldest_pending_age_seconds",
    "cx_outbox_dead",
    "cx_outbox_attempts_total",
    "cx_cache_lookups_total",
}
KUBE_STATE_METRICS = {"kube_deployment_status_replicas_unavailable"}
PROMQL_WORDS = {"sum", "by", "rate", "max", "histogram_quantile", "le", "label_values", "namespace", "and", "or"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (labels and functions left out)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    words = set(re.findall(r"[a-z_][a-z0-9_]*", without_ranges))
    return {w for w in words if w.endswith(("_bucket", "_count", "_sum", "_total", "_seconds", "_pending", "_dead", "_unavailable"))} - PROMQL_WORDS


def monitoring() -> list[dict]:
    return documents(
        template("--set", "metrics.grafanaDashboard.enabled=true", "--set", "metrics.prometheusRule.enabled=true")
    )


def test_the_dashboard_is_loaded_by_the_grafana_sidecar_and_reads_served_metrics():
    (dashboard,) = [d for d in monitoring() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "cx-cx-suite-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["cx-suite.json"])
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    read = set().union(*(metric_names(e) for e in exprs))
    assert read <= SERVED, read - SERVED
    # RED per service and method, outbox lag and dead letters, cache hits.
    assert {"rpc_server_duration_milliseconds_count", "rpc_server_duration_milliseconds_bucket"} <= read
    assert {"cx_outbox_oldest_pending_age_seconds", "cx_outbox_dead", "cx_cache_lookups_total"} <= read
    assert any("rpc_method" in e for e in exprs)
    # Latency panels ask Grafana for exemplars: a point opens its trace.
    latency = [t for p in board["panels"] for t in p.get("targets", []) if "histogram_quantile" in t["expr"]]
    assert latency and all(t["exemplar"] for t in latency)
    # Off by default; and nothing without metrics.
    assert not [d for d in documents(template()) if d["metadata"]["name"] == "cx-cx-suite-dashboard"]
    off = documents(template("--set", "metrics.enabled=false", "--set", "metrics.grafanaDashboard.enabled=true"))
    assert not [d for d in off if d["metadata"]["name"] == "cx-cx-suite-dashboard"]


def test_the_alerts_parse_with_promtool_and_each_has_a_runbook(tmp_path):
    (rule,) = [d for d in monitoring() if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule["spec"]))
    out = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"CxServerErrors", "CxSlowCalls", "CxOutboxLag", "CxOutboxDeadLetters", "CxPodsNotReady"}
    operations = (CHART.parents[1] / "docs" / "OPERATIONS.md").read_text().lower()
    for name, alert in alerts.items():
        assert metric_names(alert["expr"]) <= SERVED | KUBE_STATE_METRICS, name
        assert 'namespace="cx-suite"' in alert["expr"], "alerts stay within the release's namespace"
        runbook = alert["annotations"]["runbook"]
        assert runbook == f"docs/OPERATIONS.md#{name.lower()}"
        assert f"### {name.lower()}" in operations, f"docs/OPERATIONS.md explains {name}"
        assert alert["labels"]["severity"] in {"warning", "critical"}
    # Thresholds are settings.
    tuned = documents(template("--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.prometheusRule.p99Milliseconds=250"))
    (rule,) = [d for d in tuned if d["kind"] == "PrometheusRule"]
    slow = [r for g in rule["spec"]["groups"] for r in g["rules"] if r["alert"] == "CxSlowCalls"][0]
    assert slow["expr"].strip().endswith("> 250")


# --- the connection budget ------------------------------------------------------------


def test_the_connection_budget_is_printed_checked_and_given_to_the_evaluation_database():
    # 5 services × (2 replicas + 1 surging) × 16 = 240.
    assert "at most 240 at once" in notes()
    # A service's own pool: kpi 4 → 4 × 48 + 3 × 4 = 204.
    own = notes("--set", "services.kpi.dbMaxConnections=4")
    assert "at most 204 at once" in own
    docs = documents(template("--set", "services.kpi.dbMaxConnections=4"))
    assert env_of(of_kind(docs, "Deployment")["cx-cx-suite-kpi"])["CX_DB_MAX_CONNECTIONS"] == "4"
    assert "CX_DB_MAX_CONNECTIONS" not in env_of(of_kind(docs, "Deployment")["cx-cx-suite-profile"])
    # The evaluation PostgreSQL has room for all of them.
    (pg,) = of_kind(docs, "StatefulSet").values()
    (container,) = pg["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["-c", "max_connections=224"]
    # HA at its autoscalers' maximum: (12+1 + 20+1 + 10+1 + 10+1 + 10+1) × 16 = 1,072,
    # over a managed PostgreSQL's 500: the notes warn.
    ha = notes("-f", str(CHART / "values-ha.yaml"), "--set", "externalDatabase.maxConnections=500")
    assert "at most 1072 at once" in ha
    assert "WARNING: the services may open 1072 PostgreSQL connections, more than the\n500 of externalDatabase.maxConnections" in ha
    fine = notes("-f", str(CHART / "values-ha.yaml"), "--set", "externalDatabase.maxConnections=2000")
    assert "PostgreSQL connections, more than" not in fine


def test_a_transaction_mode_pooler_is_named_to_the_services_and_budgeted_as_its_clients():
    def config(*args):
        (cm,) = of_kind(documents(template(*args)), "ConfigMap").values()
        return cm["data"]

    external = ("--set", "externalDatabase.url=postgres://cx@pgbouncer.db:6432/cx")
    assert "CX_DB_POOLER" not in config(*external)
    assert config(*external, "--set", "externalDatabase.pooler=transaction")["CX_DB_POOLER"] == "transaction"
    # The evaluation PostgreSQL has no pooler in front, whatever the values say.
    assert "CX_DB_POOLER" not in config("--set", "externalDatabase.pooler=transaction")
    # The budget counts connections to the pooler, against its max_client_conn.
    pooled = notes(*external, "--set", "externalDatabase.pooler=transaction", "--set", "externalDatabase.maxConnections=200")
    assert "5. Connections to the pooler: at most 240 at once" in pooled
    assert "WARNING: the services may open 240 pooler connections, more than the\n200" in pooled
    assert "5. PostgreSQL connections: at most 240 at once" in notes(*external)
    # Only the two modes the services know.
    bad = helm("template", "cx", str(CHART), *external, "--set", "externalDatabase.pooler=statement", check=False)
    assert bad.returncode != 0 and "pooler" in bad.stderr


def test_a_redis_cluster_is_named_as_such_to_the_services():
    def config(*args):
        (cm,) = of_kind(documents(template(*args)), "ConfigMap").values()
        return cm["data"]

    assert "CX_REDIS_CLUSTER" not in config()
    cluster = config(*RENDERS["ha"], "--set", "externalRedis.cluster=true")
    assert cluster["CX_REDIS_CLUSTER"] == "true"
    # The evaluation Redis is one server, whatever the setting says.
    assert "CX_REDIS_CLUSTER" not in config("--set", "externalRedis.cluster=true")
