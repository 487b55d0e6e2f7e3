"""Mutual TLS between the gateway (and internal callers) and the gRPC services."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from storecast import dev_pki
from storecast.client import Client, TransportError
from storecast.v1 import catalog_pb2, query_pb2, query_pb2_grpc
from tests.conftest import Pki, Storecast, assert_error, free_port, ok, put, start_storecast, stop_storecast
from tests.helpers import T0

QUERY = query_pb2.GetProductionRequest(site_id=1, equipment_type=catalog_pb2.METER, id=1)


@dataclass
class Internal:
    directory: Path

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def credentials(self, client: str | None) -> grpc.ChannelCredentials:
        """Channel credentials trusting the services' CA, presenting `client`'s certificate (None: none)."""
        ca = (self.directory / "ca.cert.pem").read_bytes()
        if client is None:
            return grpc.ssl_channel_credentials(root_certificates=ca)
        return grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=(self.directory / f"{client}.key.pem").read_bytes(),
            certificate_chain=(self.directory / f"{client}.cert.pem").read_bytes(),
        )


@pytest.fixture(scope="module")
def internal(tmp_path_factory: pytest.TempPathFactory) -> Internal:
    """An internal CA apart from the public one: the services' certificate, the
    gateway's, an internal caller's; and a caller of another CA."""
    directory = tmp_path_factory.mktemp("internal-pki")
    ca = dev_pki.new_ca("storecast internal CA")
    ca.write(directory, "ca")
    dev_pki.issue(ca, "storecast-services", server_names=("localhost",)).write(directory, "services")
    dev_pki.issue(ca, "storecast-gateway").write(directory, "gateway")
    dev_pki.issue(ca, "reporting-job").write(directory, "caller")
    dev_pki.issue(dev_pki.new_ca("someone else's CA"), "reporting-job").write(directory, "stranger")
    return Internal(directory)


@dataclass
class Secured:
    storecast: Storecast
    grpc_port: int
    health_port: int


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki, internal: Internal) -> Iterator[Secured]:
    """`serve all` with mutual TLS on the gRPC port: the in-process gateway reaches
    its services over it like a separate one would. Health also on a plaintext port."""
    grpc_port, health_port = free_port(), free_port()
    instance = start_storecast(
        tmp_path_factory.mktemp("secured"),
        test_pki,
        {
            "STORECAST_GRPC_PORT": str(grpc_port),
            "STORECAST_GRPC_TLS_CERT": internal.path("services.cert.pem"),
            "STORECAST_GRPC_TLS_KEY": internal.path("services.key.pem"),
            "STORECAST_GRPC_TLS_CA": internal.path("ca.cert.pem"),
            "STORECAST_GRPC_HEALTH_PORT": str(health_port),
            "STORECAST_GRPC_CLIENT_CERT": internal.path("gateway.cert.pem"),
            "STORECAST_GRPC_CLIENT_KEY": internal.path("gateway.key.pem"),
            "STORECAST_GRPC_CLIENT_CA": internal.path("ca.cert.pem"),
            # The targets' host name must be one the services' certificate names.
            "STORECAST_INGEST_TARGET": f"localhost:{grpc_port}",
            "STORECAST_QUERY_TARGET": f"localhost:{grpc_port}",
        },
    )
    yield Secured(instance, grpc_port, health_port)
    stop_storecast(instance)
    assert instance.process.returncode == 0, instance.log.read_text()


def test_the_gateway_with_its_client_certificate_works_end_to_end(secured: Secured) -> None:
    with secured.storecast.client("admin") as admin:
        ok(put(admin, "/v1/1/production/meter", [{"timestamp": T0, "id": 1, "p": 4.0}]), 201)
        assert [record["p"] for record in ok(admin.get("/v1/1/production/meter/1"))["results"]] == [4.0]


def test_an_internal_caller_with_a_certificate_of_the_internal_ca_is_served(secured: Secured, internal: Internal) -> None:
    with secured.storecast.client("admin") as admin:
        ok(put(admin, "/v1/2/production/meter", [{"timestamp": T0, "id": 1, "p": 5.0}]), 201)
    with grpc.secure_channel(f"localhost:{secured.grpc_port}", internal.credentials("caller")) as channel:
        request = query_pb2.GetProductionRequest(site_id=2, equipment_type=catalog_pb2.METER, id=1)
        records = query_pb2_grpc.QueryStub(channel).GetProduction(request, timeout=30)
    assert records.count == 1


@pytest.mark.parametrize("client", [None, "stranger"])
def test_a_caller_without_a_trusted_certificate_is_refused(secured: Secured, internal: Internal, client: str | None) -> None:
    with (
        grpc.secure_channel(f"localhost:{secured.grpc_port}", internal.credentials(client)) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        query_pb2_grpc.QueryStub(channel).GetProduction(QUERY, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_grpc_is_refused(secured: Secured) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{secured.grpc_port}") as channel, pytest.raises(grpc.RpcError) as refused:
        query_pb2_grpc.QueryStub(channel).GetProduction(QUERY, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_plaintext_health_port_serves_health_only(secured: Secured) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{secured.health_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "storecast.v1.Ingest", "storecast.v1.Query"):
            assert (
                health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
                == health_pb2.HealthCheckResponse.SERVING
            )
        with pytest.raises(grpc.RpcError) as missing:
            query_pb2_grpc.QueryStub(channel).GetProduction(QUERY, timeout=10)
    assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_gateway_without_the_client_certificate_gets_1500(tmp_path: Path, test_pki: Pki, internal: Internal) -> None:
    # Services with mutual TLS, a gateway that speaks plaintext to them.
    instance = start_storecast(
        tmp_path,
        test_pki,
        {
            "STORECAST_GRPC_TLS_CERT": internal.path("services.cert.pem"),
            "STORECAST_GRPC_TLS_KEY": internal.path("services.key.pem"),
            "STORECAST_GRPC_TLS_CA": internal.path("ca.cert.pem"),
            "STORECAST_GRPC_TIMEOUT_S": "5",
        },
    )
    try:
        with instance.client("admin") as admin:
            assert_error(admin.get("/v1/1/production/meter/1"), 500, 1500)
    finally:
        stop_storecast(instance)


def test_the_python_client_over_mutual_tls(secured: Secured, internal: Internal) -> None:
    target = f"localhost:{secured.grpc_port}"
    cert, key, ca = (internal.path(name) for name in ("caller.cert.pem", "caller.key.pem", "ca.cert.pem"))
    with Client.grpc(target, cert=cert, key=key, ca=ca) as client:
        client.put(3, "production/meter", {"timestamp": [T0, T0 + 1000], "id": [1, 1], "p": [6.0, 7.0]})
        assert client.read(3, "production/meter", 1).columns["p"].tolist() == [6.0, 7.0]
    with Client.grpc(target, ca=internal.path("ca.cert.pem"), timeout=5) as anonymous, pytest.raises(TransportError) as refused:
        anonymous.read(3, "production/meter", 1)
    assert refused.value.grpc_code == grpc.StatusCode.UNAVAILABLE
