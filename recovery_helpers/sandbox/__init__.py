"""The embedded AWS: moto on 127.0.0.1, corrected where the runbook depends on AWS's real behaviour.

    with Sandbox() as sb:
        ddb = boto3.client("dynamodb", **sb.client_kwargs())

What it corrects in moto (see README, "The sandbox"): point-in-time restore brings back the past, exports look
like AWS's, a Deny stops every DynamoDB write path with AccessDeniedException, restored tables are CREATING for a
while, numbers are stored trimmed as AWS stores them. Runbook code never imports this module.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import urllib.request
from typing import Any

from .clock import CLOCK
from .settings import SandboxSettings

__all__ = ["Sandbox", "SandboxSettings"]

ADMIN_USER = "sandbox-admin"
ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
_running: Sandbox | None = None
_running_lock = threading.Lock()


class Sandbox:
    """An embedded AWS served over HTTP on 127.0.0.1. One per process: moto's backends are process-global.

    Keyword arguments are :class:`SandboxSettings` fields (restore_seconds, pitr_lag_seconds, latency_ms, ...).
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        enforce_iam: bool = True,
        region: str = "us-east-1",
        **settings: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.enforce_iam = enforce_iam
        self.region = region
        self.settings = SandboxSettings()
        self.settings.update(**settings)
        self.clock = CLOCK
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._middleware: Any = None
        self.admin_access_key_id = "sandbox"
        self.admin_secret_access_key = "sandbox"

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        global _running
        with _running_lock:
            if _running is not None:
                raise RuntimeError(
                    "a Sandbox is already running in this process (moto keeps its state per process): "
                    "reuse it, or stop it first"
                )
            _running = self
        try:
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

            from . import patches
            from .server import SandboxMiddleware, serve

            patches.install(self.settings, self.clock)
            app = DomainDispatcherApplication(create_backend_app)
            self._middleware = SandboxMiddleware(app, self.settings, self._control)
            try:
                self._server = serve(self._middleware, self.host, self.port)
            except SystemExit as exc:  # werkzeug exits the process when the port is taken
                raise OSError(
                    f"port {self.port} on {self.host} is in use: pick another (or 0 for any)"
                ) from exc
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox", daemon=True)
            self._thread.start()
            self._set_up_identity()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        global _running
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        from . import patches

        patches.set_enforcement(False)
        patches.reset_state()
        with _running_lock:
            if _running is self:
                _running = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every resource (tables, roles, parameters, ...) and start over with a fresh administrator."""
        from . import patches

        patches.set_enforcement(False)
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(req).read()
        patches.reset_state()
        self._set_up_identity()

    def _set_up_identity(self) -> None:
        """Create the administrator whose keys env() hands out, then switch IAM enforcement on if asked."""
        from . import patches

        if not self.enforce_iam:
            self.admin_access_key_id, self.admin_secret_access_key = "sandbox", "sandbox"
            return
        iam = self._raw_client("iam", "sandbox", "sandbox")
        iam.create_user(UserName=ADMIN_USER)
        iam.put_user_policy(
            UserName=ADMIN_USER, PolicyName="AdministratorAccess", PolicyDocument=ADMIN_POLICY
        )
        key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
        self.admin_access_key_id = key["AccessKeyId"]
        self.admin_secret_access_key = key["SecretAccessKey"]
        patches.set_enforcement(True)

    # -- how to reach it ----------------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables of an administrator: any AWS SDK, the CLI or a kernel reaches the sandbox."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.admin_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.admin_secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for boto3.client(...) as the administrator."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": self.admin_access_key_id,
            "aws_secret_access_key": self.admin_secret_access_key,
        }

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` as the administrator (kwargs override, e.g. config=...)."""
        import boto3

        return boto3.client(service, **{**self.client_kwargs(), **kwargs})

    def _raw_client(self, service: str, key: str, secret: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    # -- time and knobs -----------------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        """The sandbox's current time (UTC, aware). PITR history and restore windows are on this clock."""
        return dt.datetime.fromtimestamp(self.clock.now(), tz=dt.UTC)

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock forward without sleeping (finishes CREATING periods, opens export windows)."""
        self.clock.advance(seconds)

    def configure(self, **settings: Any) -> None:
        """Change settings on the running sandbox (latency, fault rates, durations...)."""
        self.settings.update(**settings)

    @property
    def calls(self) -> dict[str, int]:
        """Requests served so far, by operation name."""
        return dict(self._middleware.calls) if self._middleware else {}

    @property
    def faults(self) -> dict[str, int]:
        """Faults injected so far, by kind (throttle, error, drop)."""
        return dict(self._middleware.faults) if self._middleware else {}

    def watch_writes(self, callback: Any) -> Any:
        """Call ``callback(WriteSeen)`` for every change applied to a table with a NEW_AND_OLD_IMAGES stream,
        synchronously, before the writer gets its answer (see ``sandbox.observers``); returns a stop function."""
        from .observers import watch

        return watch(callback)

    def requests_in_flight(self) -> int:
        """Requests being served right now (a killed client's last request may still be applied)."""
        from .observers import requests_in_flight

        return requests_in_flight()

    def reset_counters(self) -> None:
        if self._middleware:
            self._middleware.reset_counters()

    def _control(self, name: str, payload: dict[str, Any]) -> Any:
        """The /_sandbox/<name> HTTP control API, for a sandbox running in another process."""
        if name == "settings":
            if payload:
                self.configure(**payload)
            return self.settings.as_dict()
        if name == "advance":
            self.advance(float(payload["seconds"]))
            return {"now": self.now().isoformat()}
        if name == "now":
            return {"now": self.now().isoformat()}
        if name == "counters":
            return {"calls": self.calls, "faults": self.faults}
        raise KeyError(f"unknown control {name!r}: settings, advance, now, counters")


def main_env_lines(sb: Sandbox) -> str:
    """The sandbox's environment as shell export lines (what `recovery sandbox` prints)."""
    return "\n".join(f"export {k}={v}" for k, v in sb.env().items())


if os.environ.get("RECOVERY_SANDBOX_DEBUG"):  # pragma: no cover - a hook for debugging moto's own logs
    import logging

    logging.basicConfig(level=logging.DEBUG)
