"""How provider failures are classified: retryable (rate limits, server errors, timeouts, lost connections,
honouring Retry-After) or permanent (the request itself is refused: bad request, bad key, no permission)."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

# Retryable HTTP statuses; every other 4xx is the request's own fault and never gets better by retrying.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


class ProviderError(Exception):
    def __init__(
        self, message: str, *, error_type: str, retryable: bool, retry_after: float | None = None, status: int = 0
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


def error_for_status(provider: str, status: int, detail: str, retry_after: float | None) -> ProviderError:
    detail = " ".join(detail.split())[:300]
    if status == 429:
        return ProviderError(
            f"{provider} rate limit (HTTP 429): {detail}",
            error_type="RateLimited",
            retryable=True,
            retry_after=retry_after,
            status=status,
        )
    if status >= 500 or status in RETRYABLE_STATUSES:
        return ProviderError(
            f"{provider} unavailable (HTTP {status}): {detail}",
            error_type="ProviderUnavailable",
            retryable=True,
            retry_after=retry_after,
            status=status,
        )
    return ProviderError(
        f"{provider} refused the request (HTTP {status}): {detail}",
        error_type="ProviderRejected",
        retryable=False,
        status=status,
    )


def timeout_error(provider: str, seconds: float) -> ProviderError:
    return ProviderError(f"{provider} did not answer within {seconds:g}s", error_type="ProviderTimeout", retryable=True)


def connection_error(provider: str, exc: BaseException) -> ProviderError:
    return ProviderError(
        f"cannot reach {provider}: {type(exc).__name__}: {exc}", error_type="ProviderUnavailable", retryable=True
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_info_delay(body: Any) -> float | None:
    """Google APIs put the wait in the error body too: a google.rpc.RetryInfo detail with retryDelay "30s"."""
    error = body.get("error", body) if isinstance(body, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None
