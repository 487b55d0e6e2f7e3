"""The web console (issue 14): its static files under /console/, read by a browser with a client certificate.

The files hold no site's data: the page reads it through /v1 and /ext/v1 with
the same certificate, where every request is checked against the sites the
certificate may read. The files themselves go only to a certificate the
permissions file knows (else 403/1400, as for the API), so that nothing of the
deployment is shown to a stranger.

Every file is read once at start (a few hundred kB with uPlot) and served from
memory with a strong ETag (weak when the answer is encoded: gateway/codings.py).
Module imports name plain paths (js/views/…), so a browser may not keep them
unchecked: `no-cache` makes it revalidate each one, and an unchanged file costs
a 304 with no body. `private`: the answer depends
on the certificate, so no shared cache may keep it. The files do not count
against the per-certificate rate limit: a page load is a dozen of them, and
what the page then asks the API counts as any client's requests do.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Scope

from gateway import routing
from gateway.config import GatewaySettings
from gateway.identity import client_identity
from gateway.permissions import Permissions
from gateway.responses import caller
from storecast.status import ApiFailure, ApiStatus

log = logging.getLogger("storecast.gateway")

PREFIX = "/console"
ROOT = Path(__file__).parent
UPLOT = "vendor/uPlot.iife.min.js"
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The page loads only its own files and talks only to its own origin; uPlot styles its elements
# through the CSSOM (element.style), which style-src does not govern, so no inline style is needed.
_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
        " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "private, no-cache",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets(root: Path = ROOT) -> dict[str, Asset]:
    """The console's files by their path under /console/ (screenshots and Python excluded by type)."""
    assets: dict[str, Asset] = {}
    for path in sorted(root.rglob("*")):
        media_type = _MEDIA_TYPES.get(path.suffix)
        if media_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        assets[path.relative_to(root).as_posix()] = Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    return assets


def serves(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class Console:
    def __init__(self, settings: GatewaySettings, permissions: Permissions, root: Path = ROOT) -> None:
        self._settings = settings
        self._permissions = permissions
        self._assets = load_assets(root)
        if UPLOT not in self._assets:
            log.warning("the console's charts are missing (%s): `make vendor` puts uPlot there", root / UPLOT)

    async def handle(self, request: Request) -> Response:
        """The answer to a request whose path `serves`; ApiFailure for a refusal."""
        scope = request.scope
        path: str = scope["path"]
        if path == PREFIX:
            # Relative module paths (js/main.js) resolve against the directory: /console/.
            query = scope.get("query_string", b"").decode("latin-1")
            return RedirectResponse(PREFIX + "/" + (f"?{query}" if query else ""), status_code=308)
        name = path.removeprefix(PREFIX + "/") or "index.html"
        asset = self._assets.get(name)
        if asset is None:
            raise ApiFailure(ApiStatus.INVALID_ENDPOINT, f"the console has no file {name!r}")
        if scope["method"] not in ("GET", "HEAD"):
            raise routing.MethodNotAllowed(f"the console's files take GET and HEAD, not {scope['method']}", routing.ALLOW_GET)
        cn = client_identity(scope, self._settings)
        scope["state"]["cn"] = cn
        if not self._permissions.knows(cn):
            raise ApiFailure(ApiStatus.PERMISSION_ERROR, f"{caller(cn)} may not use the console")
        headers = {"etag": asset.etag, **_SECURITY_HEADERS}
        if asset.etag in _etags(scope):
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)


def _etags(scope: Scope) -> list[str]:
    """The entity tags of If-None-Match (weak ones compare equal, RFC 9110 §13.1.2)."""
    values = [value.decode("latin-1") for key, value in scope["headers"] if key == b"if-none-match"]
    return [tag.strip().removeprefix("W/") for value in values for tag in value.split(",")]
