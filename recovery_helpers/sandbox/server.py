"""The HTTP side of the sandbox: moto's WSGI app behind a middleware for latency, faults and control."""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

from . import observers
from .operations import DATA_PLANE
from .screening import screen_request
from .settings import SandboxSettings

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
            if self._seed != self.settings.fault_seed or self.settings.reseeded:
                self._seed = self.settings.fault_seed
                self.settings.reseeded = False
                self._rng = random.Random(self._seed)
            return self._rng.random()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = LimitedStream(environ["wsgi.input"], length)
        environ["wsgi.input_terminated"] = True  # the stream ends at the body's end: nobody reads past it
        observers.set_request(environ.get("HTTP_AUTHORIZATION"))
        try:
            try:
                return self._serve(environ, start_response)
            finally:
                _drain(environ)
        finally:
            observers.request_done()

    def _serve(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self._serve_control(path[len("/_sandbox/") :], environ, start_response)
        prefix, op = _target(environ)
        s3 = "/s3/aws4_request" in environ.get("HTTP_AUTHORIZATION", "")
        query = not op and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
        if query:
            op = _query_action(environ)  # IAM, STS...: the Action of the form body
        label = op or (
            f"S3:{environ.get('REQUEST_METHOD', '?')}" if s3 else environ.get("REQUEST_METHOD", "?")
        )
        with self._lock:
            self.calls[label] += 1
        s = self.settings
        if s.latency_ms:
            time.sleep(s.latency_ms / 1000.0)
        if s.fault_operations:
            targeted = label in s.fault_operations
        else:
            targeted = prefix.startswith("DynamoDB") and op in DATA_PLANE
        if targeted:
            fault = self._pick_fault()
            if fault:
                with self._lock:
                    self.faults[fault] += 1
                kind = (
                    "s3"
                    if s3
                    else "query"
                    if query
                    else "data"
                    if prefix.startswith("DynamoDB") and op in DATA_PLANE
                    else "json"
                )
                return self._inject(fault, kind, environ, start_response)
        if prefix == "DynamoDB_20120810":
            refused = screen_request(environ, op)  # what DynamoDB refuses never reaches moto
            if refused is not None:
                return _json(start_response, "400 Bad Request", refused)
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

    def _inject(
        self, fault: str, kind: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer as AWS does when it throttles or fails: DynamoDB item calls with
        ProvisionedThroughputExceededException, other JSON calls with ThrottlingException, S3 with 503 SlowDown."""
        _drain(environ)  # a clean answer rather than a reset mid-upload
        if kind == "query" and fault in ("throttle", "error"):
            code, status = (
                ("Throttling", "400 Bad Request")
                if fault == "throttle"
                else ("InternalFailure", "500 Internal Server Error")
            )
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>sandbox fault</Message>"
                "</Error><RequestId>sandbox</RequestId></ErrorResponse>"
            ).encode()
            start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
            return [body]
        if kind == "s3" and fault in ("throttle", "error"):
            code, status = (
                ("SlowDown", "503 Slow Down")
                if fault == "throttle"
                else ("InternalError", "500 Internal Server Error")
            )
            body = (
                f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                f"<Message>sandbox fault</Message></Error>"
            ).encode()
            start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        if fault == "throttle" and kind == "data":
            body = {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded. "
                "Consider increasing your provisioning level with the UpdateTable API.",
            }
            return _json(start_response, "400 Bad Request", body)
        if fault == "throttle":
            body = {"__type": "ThrottlingException", "message": "Rate exceeded"}
            return _json(start_response, "400 Bad Request", body)
        if fault == "error":
            body = {
                "__type": "com.amazon.coral.availability#InternalServerError",
                "message": "Internal error",
            }
            return _json(start_response, "500 Internal Server Error", body)
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise _DropConnection("sandbox dropped the connection")

    def _serve_control(self, name: str, environ: dict[str, Any], start_response: StartResponse):
        raw = environ["wsgi.input"].read()
        try:
            payload = json.loads(raw) if raw else {}
            result = self.control(name, payload)
        except (TypeError, ValueError, KeyError) as exc:
            return _json(start_response, "400 Bad Request", {"error": str(exc)})
        return _json(start_response, "200 OK", result)


def _query_action(environ: dict[str, Any]) -> str:
    """The Action of a query-protocol request, read from its form body (which is put back for moto)."""
    from urllib.parse import parse_qs

    stream = environ["wsgi.input"]
    raw = stream.read()
    environ["wsgi.input"] = LimitedStream(io.BytesIO(raw), len(raw))
    return (parse_qs(raw.decode("utf-8", "replace")).get("Action") or [""])[0]


def _drain(environ: dict[str, Any]) -> None:
    """Read whatever the application left of the request body, so the next request on the connection starts
    at a request line."""
    stream = environ.get("wsgi.input")
    try:
        while isinstance(stream, LimitedStream) and stream.read(65536):
            pass
    except (OSError, ValueError):
        pass


class _DropConnection(ConnectionError):
    """Raised inside the WSGI app once the socket is shut: werkzeug treats it as a dropped connection."""


def _json(start_response: StartResponse, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body, default=str).encode()
    start_response(
        status, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))]
    )
    return [data]


class _Handler(WSGIRequestHandler):
    """HTTP/1.1 with keep-alive, and quiet.

    werkzeug's development server closes every connection and, after each response, reads whatever is on the
    socket (which on a kept connection is the next request). AWS keeps connections, and a new TCP connection plus
    a new server thread per request costs the sandbox a good part of its throughput, so this handler runs the
    WSGI application itself: the middleware reads the request body exactly to its Content-Length, the answer is
    sent whole with its Content-Length, and http.server keeps the connection for the next request.
    """

    protocol_version = "HTTP/1.1"

    def run_wsgi(self) -> None:
        environ = self.make_environ()
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except ConnectionError:
            self.close_connection = True
            return
        except Exception:  # a bug in moto: answer 500 as AWS would, keep serving  # noqa: BLE001
            import traceback

            traceback.print_exc()
            started[:] = ["500 Internal Server Error", [("Content-Type", "application/x-amz-json-1.0")]]
            chunks = [b'{"__type":"InternalServerError","message":"sandbox error (see its log)"}']
        status, headers = started
        body = b"".join(chunks)
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        is_head = environ.get("REQUEST_METHOD") == "HEAD"
        for name, value in headers:
            lowered = name.lower()
            if lowered == "connection" or (lowered == "content-length" and not is_head):
                continue
            self.send_header(name, value)
        if not is_head:
            self.send_header("Content-Length", str(len(body)))
        self._headers_buffer.append(b"\r\n")
        if not is_head and body:
            self._headers_buffer.append(
                body
            )  # one write: no Nagle/delayed-ACK stall between headers and body
        self.flush_headers()

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def serve(app: Any, host: str, port: int) -> BaseWSGIServer:
    """A threaded WSGI server on host:port (port 0 picks a free one); call serve_forever in a thread."""
    server = make_server(host, port, app, threaded=True, request_handler=_Handler)
    server.daemon_threads = True
    return server
