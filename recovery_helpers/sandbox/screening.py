"""Where requests meet the sandbox's DynamoDB rules: read the JSON body once, screen it, hand moto the result.

``validation`` checks what needs no table (types, the API model's constraints, AttributeValues): a refused request
is answered as DynamoDB answers it and never reaches moto; an accepted one reaches moto as DynamoDB reads it
(numbers in their stored form, "true" as a boolean). What needs the table is checked in moto's handler
(``item_rules``).
"""

from __future__ import annotations

import io
import json
from typing import Any

from werkzeug.wsgi import LimitedStream

from . import validation


def screen_request(environ: dict[str, Any], operation: str) -> dict[str, str] | None:
    """DynamoDB's error body for a request it refuses (HTTP 400), else None with the cleaned body put back."""
    raw = environ["wsgi.input"].read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        _put_back(environ, raw)
        return validation.Refusal(
            validation.SERIALIZATION, "Start of structure or map found where not expected"
        ).body()
    try:
        cleaned = validation.screen(operation, body)
    except validation.Refusal as refusal:
        _put_back(environ, raw)
        return refusal.body()
    _put_back(environ, raw)  # the body as signed (moto checks the signature over it)...
    if cleaned is not body:
        environ[CLEANED] = json.dumps(cleaned).encode()  # ...and as DynamoDB reads it, for moto's parser
    return None


CLEANED = "recovery_helpers.sandbox.cleaned_body"


def install() -> None:
    """moto parses its parameters from the body as DynamoDB reads it (the screened one), not as sent."""
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.parse_parameters

    def parse_parameters(self: Any, request: Any) -> None:
        cleaned = getattr(request, "environ", {}).get(CLEANED)
        if cleaned is None:
            return original(self, request)
        proxy = _BodyProxy(request, cleaned)
        return original(self, proxy)

    DynamoHandler.parse_parameters = parse_parameters


class _BodyProxy:
    """The request with another body: what moto's parser reads (``data``), everything else from the request."""

    def __init__(self, request: Any, data: bytes) -> None:
        self._request, self.data = request, data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def _put_back(environ: dict[str, Any], data: bytes) -> None:
    environ["wsgi.input"] = LimitedStream(io.BytesIO(data), len(data))
    environ["CONTENT_LENGTH"] = str(len(data))
