"""Who may read or write which sites: the permissions file of docs/api/v1.md §4."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec
import yaml

Access = Literal["read", "write"]


class ClientGrant(msgspec.Struct, forbid_unknown_fields=True):
    cn: str
    sites: Literal["*"] | list[int]
    access: list[Access]


class PermissionsFile(msgspec.Struct, forbid_unknown_fields=True):
    clients: list[ClientGrant]


@dataclass(frozen=True, slots=True)
class Grant:
    all_sites: bool
    sites: frozenset[int]
    access: frozenset[str]


class Permissions:
    def __init__(self, grants: dict[str, Grant]) -> None:
        self._grants = grants

    @classmethod
    def load(cls, path: Path) -> Permissions:
        document = msgspec.convert(yaml.safe_load(path.read_text()), PermissionsFile)
        grants = {
            client.cn: Grant(
                client.sites == "*", frozenset(client.sites if client.sites != "*" else ()), frozenset(client.access)
            )
            for client in document.clients
        }
        return cls(grants)

    def allows(self, cn: str | None, site_id: int, access: Access) -> bool:
        grant = self._grants.get(cn) if cn is not None else None
        if grant is None or access not in grant.access:
            return False
        return grant.all_sites or site_id in grant.sites

    def knows(self, cn: str | None) -> bool:
        """Whether the file grants this certificate anything at all."""
        return cn is not None and cn in self._grants

    def readable_sites(self, cn: str | None) -> frozenset[int] | Literal["*"] | None:
        """The sites the certificate may read: "*" for every site, None when it may read none
        (unknown, or granted write access only)."""
        grant = self._grants.get(cn) if cn is not None else None
        if grant is None or "read" not in grant.access:
            return None
        return "*" if grant.all_sites else grant.sites
