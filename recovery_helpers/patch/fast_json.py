"""The engine's two hot calls in plain JSON: BatchGetItem answers read, TransactWriteItems requests written.

botocore parses an answer and serializes a request by walking its model member by member; for DynamoDB
items (deep AttributeValue structures) that was a third of the patch engine's client CPU (bench/README.md).

Reading: the items of a BatchGetItem answer are read with ``json.loads``. An AttributeValue in the JSON protocol is
already what boto3's low-level client returns (``{"S": "x"}``, ``{"N": "1.5"}``, ``{"BOOL": true}``...),
except binary, which travels as base64 text and is returned as bytes: those values (``B``, ``BS``, also
inside maps and lists) are decoded here, and only when the answer holds one. The rest of the answer
(``UnprocessedKeys``, ``ConsumedCapacity``) and every error answer are still parsed by botocore, through the
``before-parse`` event botocore offers for this (its ``customized_response_dict`` is merged into the result).

Writing: a TransactWriteItems request's ``TransactItems`` are taken out of the parameters before botocore
serializes them (the engine builds every element itself and runs without parameter validation; DynamoDB
validates them) and put into the JSON body with ``json.dumps`` (bytes as base64, as botocore writes them)
before the request is signed and sent (``before-call``). The call recorder still sees them: it reads the
parameters before this does. Headers, signing, retries and error parsing stay botocore's.
"""

from __future__ import annotations

import base64
import json
from typing import Any

#: Where a call's TransactItems wait between the parameter build and the request (botocore's per-call context).
_STASH = "recovery_transact_items"


def use_fast_json(client: Any) -> None:
    """Have ``client`` (a DynamoDB client) read BatchGetItem's items and write TransactWriteItems' in JSON."""
    events = client.meta.events
    events.register("before-parse.dynamodb.BatchGetItem", _items_by_json)
    # on the service level and last: after the call recorder's handler, which reads the table names
    events.register_last("before-parameter-build.dynamodb", _take_transact_items)
    events.register("before-call.dynamodb.TransactWriteItems", _put_transact_items)


def _take_transact_items(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if getattr(model, "name", None) == "TransactWriteItems" and isinstance(params.get("TransactItems"), list):
        context[_STASH] = params["TransactItems"]
        params["TransactItems"] = []  # botocore serializes an empty list; the body gets the real one below


def _put_transact_items(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    items = context.pop(_STASH, None)
    if items is None:
        return
    body = json.loads(params["body"])
    body["TransactItems"] = items
    params["body"] = json.dumps(body, separators=(",", ":"), default=_binary).encode()


def _binary(value: Any) -> str:
    """Bytes as DynamoDB's JSON protocol carries them: base64 text."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    inner = getattr(value, "value", None)  # boto3.dynamodb.types.Binary
    if isinstance(inner, (bytes, bytearray)):
        return base64.b64encode(inner).decode()
    raise TypeError(f"{type(value).__name__} cannot go into a DynamoDB request")


def _items_by_json(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    if response_dict.get("status_code") != 200:
        return  # errors: botocore's own parsing (codes, messages, modeled fields)
    body = response_dict.get("body")
    if not isinstance(body, (bytes, bytearray)) or b'"Responses"' not in body:
        return
    try:
        data = json.loads(body)
    except ValueError:
        return  # not JSON text (never from DynamoDB): botocore's parser says what it is
    responses = data.pop("Responses", None)
    if not isinstance(responses, dict):
        return
    if b'"B"' in body or b'"BS"' in body:
        for items in responses.values():
            for item in items:
                for value in item.values():
                    _decode_binary(value)
    response_dict["body"] = json.dumps(data).encode()  # what is left: botocore parses it as usual
    customized_response_dict["Responses"] = responses


def _decode_binary(value: dict[str, Any]) -> None:
    """Base64 text to bytes in one AttributeValue, in place (maps and lists walked)."""
    if "B" in value:
        value["B"] = base64.b64decode(value["B"])
    elif "BS" in value:
        value["BS"] = [base64.b64decode(v) for v in value["BS"]]
    elif "M" in value:
        for inner in value["M"].values():
            _decode_binary(inner)
    elif "L" in value:
        for inner in value["L"]:
            _decode_binary(inner)
