"""The HTTP side of the sandbox: moto's WSGI app behind a middleware for latency, faults and control."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections import Counter
from typing import Any, Callable, Iterable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .settings import SandboxSettings

#: DynamoDB operations that read or write items: the ones AWS throttles.
DATA_PLANE = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem", "Query", "Scan",
    "TransactGetItems", "TransactWriteItems", "ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction",
}

StartResponse = Callable[..., Any]


def _target(environ: dict[str, Any]) -> tuple[str, str]:
    """(service prefix, operation) from the X-Amz-Target header, or ("", "") for non-JSON protocols."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if "." in target:
        prefix, op = target.split(".", 1)
        return prefix, op
    return "", ""


class SandboxMiddleware:
    """Wraps moto: adds latency, injects throttling/5xx/dropped connections, counts calls, serves /_sandbox."""

    def __init__(self, app: Any, settings: SandboxSettings, control: Callable[[str, dict], Any]) -> None:
        self.app = app
        self.settings = settings
        self.control = control
        self.calls: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._rng = random.Random(settings.fault_seed)
        self._seed = settings.fault_seed

    def reset_counters(self) -> None:
        with self._lock:
            self.calls.clear()
            self.faults.clear()

    def _draw(self) -> float:
        with self._lock:
            if self._seed != self.settings.fault_seed:
                self._seed = self.settings.fault_seed
                self._rng = random.Random(self._seed)
            return self._rng.random()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self._serve_control(path[len("/_sandbox/"):], environ, start_response)
        prefix, op = _target(environ)
        with self._lock:
            self.calls[op or environ.get("REQUEST_METHOD", "?")] += 1
        s = self.settings
        if s.latency_ms:
            time.sleep(s.latency_ms / 1000.0)
        if prefix.startswith("DynamoDB") and op in DATA_PLANE and (
            not s.fault_operations or op in s.fault_operations
        ):
            fault = self._pick_fault()
            if fault:
                with self._lock:
                    self.faults[fault] += 1
                return self._inject(fault, environ, start_response)
        return self.app(environ, start_response)

    def _pick_fault(self) -> str | None:
        s = self.settings
        if not (s.throttle_rate or s.error_rate or s.drop_rate):
            return None
        r = self._draw()
        if r < s.throttle_rate:
            return "throttle"
        if r < s.throttle_rate + s.error_rate:
            return "error"
        if r < s.throttle_rate + s.error_rate + s.drop_rate:
            return "drop"
        return None

    def _inject(self, fault: str, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # Drain the body so the client sees a clean answer rather than a reset mid-upload.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            environ["wsgi.input"].read(length)
        if fault == "throttle":
            body = {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded. "
                "Consider increasing your provisioning level with the UpdateTable API.",
            }
            return _json(start_response, "400 Bad Request", body)
        if fault == "error":
            body = {"__type": "com.amazon.coral.availability#InternalServerError", "message": "Internal error"}
            return _json(start_response, "500 Internal Server Error", body)
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise _DropConnection("sandbox dropped the connection")

    def _serve_control(self, name: str, environ: dict[str, Any], start_response: StartResponse):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            payload = json.loads(raw) if raw else {}
            result = self.control(name, payload)
        except (TypeError, ValueError, KeyError) as exc:
            return _json(start_response, "400 Bad Request", {"error": str(exc)})
        return _json(start_response, "200 OK", result)


class _DropConnection(ConnectionError):
    """Raised inside the WSGI app once the socket is shut: werkzeug treats it as a dropped connection."""


def _json(start_response: StartResponse, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body, default=str).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))])
    return [data]


class _Handler(WSGIRequestHandler):
    """Keep-alive HTTP/1.1 (moto's own handler closes every connection) and quiet."""

    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any, **kwargs: Any) -> None:  # noqa: D102 - silence per-request logs
        pass



def serve(app: Any, host: str, port: int) -> BaseWSGIServer:
    """A threaded WSGI server on host:port (port 0 picks a free one); call serve_forever in a thread."""
    server = make_server(host, port, app, threaded=True, request_handler=_Handler)
    server.daemon_threads = True
    return server
