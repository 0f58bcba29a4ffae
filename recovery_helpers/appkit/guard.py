"""The application's read-only switch: an SSM parameter listing the tenants that must not write right now.

The parameter (default ``read-only-customers``, type StringList or String) holds comma-separated tenant ids;
``all`` puts every tenant in read-only mode, an empty value, ``none`` or ``-`` nobody; the value is read by
``resources.readonly.parse_tenants``, the same reader the runbook's contain and lift steps use. The runbook's contain step
sets it and its lift step puts the previous value back; the application asks
:meth:`ReadOnlyGuard.is_read_only` before every write and answers "read-only, try later" instead of writing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ..resources import readonly

ALL = readonly.ALL
NOBODY = readonly.NOBODY

_log = logging.getLogger(__name__)


def parse_tenants(value: str | None) -> frozenset[str]:
    """The parameter's value as a set of tenant ids (the runbook's own reader: resources.readonly)."""
    return frozenset(readonly.parse_tenants(value))


class ReadOnlyGuard:
    """Answers whether a tenant is read-only, from an SSM parameter cached for ``ttl_seconds``.

    A missing parameter means nobody is read-only (logged once). When SSM fails, the last known value is kept
    (and logged); if there is none yet, nobody is read-only: IAM's write Deny is the hard stop during an
    incident, this guard only makes the application answer politely instead of failing.
    """

    def __init__(
        self,
        parameter_name: str = "read-only-customers",
        ssm_client: Any = None,
        ttl_seconds: float = 5,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        self.parameter_name = parameter_name
        self.ssm = ssm_client if ssm_client is not None else boto3.client("ssm")
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.log = logger or _log
        self._tenants: frozenset[str] | None = None
        self._fetched_at: float | None = None
        self._missing_logged = False
        self._lock = threading.Lock()

    def read_only_tenants(self) -> frozenset[str]:
        """The current set of read-only tenants (``{"all"}`` when everyone is), refreshed after the TTL."""
        with self._lock:
            now = self.clock()
            if self._fetched_at is None or now - self._fetched_at >= self.ttl_seconds:
                self._refresh()
                self._fetched_at = now
            return self._tenants or frozenset()

    def is_read_only(self, tenant: str | None = None) -> bool:
        """True if ``tenant`` (or, with ``all`` in the parameter, anyone) must not write now."""
        tenants = self.read_only_tenants()
        return ALL in tenants or (tenant is not None and str(tenant) in tenants)

    def invalidate(self) -> None:
        """Forget the cached value: the next question reads the parameter again."""
        with self._lock:
            self._fetched_at = None

    def _refresh(self) -> None:
        try:
            value = self.ssm.get_parameter(Name=self.parameter_name)["Parameter"]["Value"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                if not self._missing_logged:
                    self.log.warning(
                        "read-only parameter %r does not exist: no tenant is read-only", self.parameter_name
                    )
                    self._missing_logged = True
                self._tenants = frozenset()
                return
            self._keep_last(exc)
            return
        except BotoCoreError as exc:
            self._keep_last(exc)
            return
        self._missing_logged = False
        self._tenants = parse_tenants(value)

    def _keep_last(self, exc: BaseException) -> None:
        known = sorted(self._tenants) if self._tenants is not None else None
        self.log.error(
            "could not read read-only parameter %r (%s); keeping the last known value %s",
            self.parameter_name,
            exc,
            known if known is not None else "(none yet: nobody read-only)",
        )
