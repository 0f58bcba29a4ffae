"""`recovery demo --keep-sandbox`: the engineer is told how to reach the sandbox that stays up."""

from __future__ import annotations

import threading

import boto3

from recovery_helpers.demo.run import serve_until_interrupted
from recovery_helpers.sandbox import Sandbox


def _exports(printed: list[str]) -> dict[str, str]:
    """The variables of the `export K=V` lines among what was printed."""
    lines = [line for text in printed for line in text.splitlines() if line.startswith("export ")]
    return dict(line.removeprefix("export ").split("=", 1) for line in lines)


def test_the_printed_export_lines_reach_the_sandbox_that_stays_up(sandbox: Sandbox) -> None:
    printed: list[str] = []
    stop = threading.Event()
    server = threading.Thread(target=serve_until_interrupted, args=(sandbox, printed.append, stop))
    server.start()
    try:
        while len(printed) < 2:
            stop.wait(0.01)
        env = _exports(printed)
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        assert "TableNames" in dynamodb.list_tables()
        assert server.is_alive()
    finally:
        stop.set()
        server.join(5)
    assert not server.is_alive()
