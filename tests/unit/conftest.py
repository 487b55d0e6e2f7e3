"""What the unit tests share: one in-memory engine.

chDB holds one engine path per process and these tests share the pytest
process, so the engine is `chdb://memory`, never a directory.
"""

from __future__ import annotations

from collections.abc import Iterator

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client


@pytest.fixture(scope="session")
def engine() -> Iterator[Client]:
    client = clickhouse_connect.get_client(dsn="chdb://memory")
    yield client
    client.close()
