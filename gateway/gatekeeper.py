"""Who is calling and whether they may: the identity, the per-site permissions, then the rate limit.

One instance is shared by the /v1 tree (gateway/app.py) and /ext/v1 (gateway/ext.py),
so that both check a request alike, in docs/api/v1.md §3's order: the identity and its
permission (403, 1400), then the caller's rate limit (429, docs/api/v1.md §10).
"""

from __future__ import annotations

from starlette.requests import Request

from gateway.admission import Admission
from gateway.config import GatewaySettings
from gateway.identity import client_identity
from gateway.permissions import Access, Permissions
from gateway.responses import caller
from storecast.status import ApiFailure, ApiStatus


class Gatekeeper:
    def __init__(self, settings: GatewaySettings, permissions: Permissions, admission: Admission) -> None:
        self._settings = settings
        self.permissions = permissions
        self._admission = admission

    def identify(self, request: Request) -> str | None:
        """The caller's CN (None: no verified certificate), also kept for the access log."""
        cn = client_identity(request.scope, self._settings)
        request.scope["state"]["cn"] = cn
        return cn

    def admit(self, cn: str | None) -> None:
        """The caller's rate limit (429), once its identity may do what it asks."""
        self._admission.check_rate(cn or "")

    def authorize(self, request: Request, site_id: int, access: Access) -> None:
        """403 (1400) unless the caller may `access` the site; then the caller's rate limit (429)."""
        cn = self.identify(request)
        if not self.permissions.allows(cn, site_id, access):
            raise ApiFailure(ApiStatus.PERMISSION_ERROR, f"{caller(cn)} may not {access} site {site_id}")
        self.admit(cn)
