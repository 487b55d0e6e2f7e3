"""Admission control in the gateway: refusals for load, not for the request's content (docs/api/v1.md §10).

- **In-flight body bytes.** Each gateway process admits at most
  `STORECAST_INFLIGHT_BODY_BYTES` of PUT bodies at once, from the moment a
  body is admitted until its response is sent. A PUT's declared
  Content-Length is charged before any of its body is read; a body sent
  without one (chunked) is charged as its chunks arrive. What is charged is
  the bytes received, a coded body's included (gateway/bodies.py). Beyond the budget
  the PUT is refused at once: HTTP 503, `Retry-After: 1`, status 1500,
  "server error: the server is busy ...", and nothing of it is stored. A lone
  PUT is always admitted (the body size limit, 413, is what bounds it). The
  check comes after every v1 check of the request (docs/api/v1.md §3, then the
  query string, Content-Type and the 413 of a declared size), so a request
  within budget sees the v1 contract unchanged.
- **Per-certificate rate limit** (`STORECAST_RATE_LIMIT=<requests/s>[,<burst>]`,
  off by default): a token bucket per client certificate CN, checked once the
  certificate may do what it asks (after 403). Beyond it: HTTP 429,
  `Retry-After` (whole seconds until a token is back), status 1500, "server
  error: rate limited ...". status.proto has no code for either refusal, so
  both are 1500 with their own HTTP status, as docs/api/v1.md §10 decides.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from starlette.types import Scope

from storecast.env import optional_setting, setting
from storecast.status import ApiFailure, ApiStatus

# Where the bytes a request holds are kept, in its scope's state.
_CHARGED = "admitted_body_bytes"


class Refusal(ApiFailure):
    """A refusal for load: 1500 with its own HTTP status and a Retry-After header."""

    def __init__(self, detail: str, http_status: int, retry_after_s: int) -> None:
        super().__init__(ApiStatus.SERVER_ERROR, detail, http_status=http_status, retry_after_s=retry_after_s)


@dataclass(frozen=True, slots=True)
class RateLimit:
    per_second: float
    burst: float

    @classmethod
    def parse(cls, text: str | None) -> RateLimit | None:
        """`<requests/s>[,<burst>]`; unset, empty or 0: no limit. The burst defaults to one second's worth."""
        if not text or text.strip() in ("0", "off"):
            return None
        rate, _, burst = text.partition(",")
        try:
            limit = cls(float(rate), float(burst) if burst.strip() else max(1.0, float(rate)))
        except ValueError:
            raise ValueError(f"STORECAST_RATE_LIMIT must be <requests/s>[,<burst>], got {text!r}") from None
        if not (limit.per_second > 0 and limit.burst >= 1 and math.isfinite(limit.per_second) and math.isfinite(limit.burst)):
            raise ValueError(f"STORECAST_RATE_LIMIT needs a positive rate and a burst of at least 1, got {text!r}")
        return limit


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class Admission:
    """One gateway process's budgets. The event loop is single-threaded: no lock."""

    body_bytes: int
    rate_limit: RateLimit | None = None
    in_flight: int = 0
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Admission:
        return cls(int(setting("STORECAST_INFLIGHT_BODY_BYTES")), RateLimit.parse(optional_setting("STORECAST_RATE_LIMIT")))

    def charge(self, scope: Scope, size: int) -> None:
        """Charge `size` more bytes of this request's body, or refuse it (503)."""
        if self.in_flight and self.in_flight + size > self.body_bytes:
            raise Refusal(
                f"the server is busy ({self.in_flight} bytes of request bodies in flight, limit {self.body_bytes}); retry later",
                http_status=503,
                retry_after_s=1,
            )
        self.in_flight += size
        state = scope["state"]
        state[_CHARGED] = state.get(_CHARGED, 0) + size

    def release(self, scope: Scope) -> None:
        """Give back what the request was charged, once its response is sent (or it failed)."""
        self.in_flight -= scope.get("state", {}).pop(_CHARGED, 0)

    def check_rate(self, cn: str) -> None:
        """Take one token of the certificate's bucket, or refuse the request (429)."""
        limit = self.rate_limit
        if limit is None:
            return
        now = time.monotonic()
        bucket = self._buckets.get(cn)
        if bucket is None:
            bucket = self._buckets[cn] = _Bucket(limit.burst, now)
        bucket.tokens = min(limit.burst, bucket.tokens + (now - bucket.updated) * limit.per_second)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return
        wait_s = (1 - bucket.tokens) / limit.per_second
        raise Refusal(
            f"rate limited: certificate {cn!r} may send {limit.per_second:g} requests/s (bursts of {limit.burst:g}); "
            f"retry in {wait_s:.1f} s",
            http_status=429,
            retry_after_s=max(1, math.ceil(wait_s)),
        )
