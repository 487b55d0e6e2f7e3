"""`serve all`'s services on a Unix socket only their user can open: another local user
cannot write past the gateway's per-site permissions."""

from __future__ import annotations

import errno
import os
import pwd
import socket
import subprocess
from pathlib import Path

import grpc

from storecast.v1 import catalog_pb2, ingest_pb2, ingest_pb2_grpc
from tests.conftest import Pki, ok, put, start_storecast, stop_storecast
from tests.helpers import T0

# Run as another user with the system's Python (the venv is not theirs to run): connect to the socket.
_OTHER_USER_CONNECT = """
import socket, sys
try:
    socket.socket(socket.AF_UNIX).connect(sys.argv[1])
    print("connected")
except OSError as error:
    print("refused", error.errno)
"""


def test_the_services_socket_is_this_users_alone(tmp_path: Path, test_pki: Pki) -> None:
    path = tmp_path / "run" / "grpc.sock"
    instance = start_storecast(tmp_path, test_pki, {"STORECAST_GRPC_SOCKET": str(path)})
    try:
        assert path.is_socket() and (path.parent.stat().st_mode & 0o777) == 0o700
        # The gateway reaches the services through the socket.
        with instance.client("admin") as admin:
            ok(put(admin, "/v1/1/production/meter", [{"timestamp": T0, "id": 1, "p": 1.0}]), 201)
        # No TCP port: the services' port is not listened on.
        host, port = instance.grpc_target.rsplit(":", 1)
        with socket.socket() as probe:
            assert probe.connect_ex((host, int(port))) != 0
        # This user may call the services directly (internal callers run as the service's user).
        request = ingest_pb2.PutProductionRequest(
            site_id=2, equipment_type=catalog_pb2.METER, v1_json=b'{"values":[{"timestamp":1,"id":1}]}'
        )
        with grpc.insecure_channel(f"unix:{path}") as channel:
            assert ingest_pb2_grpc.IngestStub(channel).PutProduction(request, timeout=10).stored == 1
        # Another local user may not even connect.
        nobody = pwd.getpwnam("nobody")
        other = subprocess.run(
            ["/usr/bin/python3", "-c", _OTHER_USER_CONNECT, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            env={**os.environ, "HOME": "/tmp"},
            check=False,
        )
        assert other.stdout.strip() == f"refused {errno.EACCES}", (other.stdout, other.stderr)
    finally:
        stop_storecast(instance)
    assert instance.process.returncode == 0, instance.log.read_text()
