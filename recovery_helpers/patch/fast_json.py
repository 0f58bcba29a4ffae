"""The engine's two hot calls in plain JSON: BatchGetItem and TransactWriteItems bodies written, answers read.

botocore parses an answer and serializes a request by walking its model member by member; for DynamoDB
items (deep AttributeValue structures) that was a third of the patch engine's client CPU (bench/README.md).

Reading: the items of a BatchGetItem answer are read with ``orjson.loads``. An AttributeValue in the JSON
protocol is already what boto3's low-level client returns (``{"S": "x"}``, ``{"N": "1.5"}``, ``{"BOOL": true}``
...), except binary, which travels as base64 text and is returned as bytes: those values (``B``, ``BS``, also
inside maps and lists) are decoded here, and only when the answer holds one. The rest of the answer
(``UnprocessedKeys``, ``ConsumedCapacity``) and every error answer are still parsed by botocore, through the
``before-parse`` event botocore offers for this (its ``customized_response_dict`` is merged into the result).

Writing: a TransactWriteItems request's ``TransactItems`` and a BatchGetItem request's ``RequestItems`` are
taken out of the parameters before botocore serializes them (the engine builds every element itself and runs
without parameter validation; DynamoDB validates them) and put into the JSON body with ``orjson.dumps`` (bytes
as base64, as botocore writes them; the json module for what orjson refuses) before the request is signed and
sent (``before-call``). The call recorder still sees them: it reads the parameters before this does. Headers,
signing, retries and error parsing stay botocore's.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson

#: Where a call's TransactItems (or RequestItems) wait between the parameter build and the request
#: (botocore's per-call context).
_STASH = "recovery_transact_items"


def use_fast_json(client: Any) -> None:
    """Have ``client`` (a DynamoDB client) write BatchGetItem's and TransactWriteItems' bodies and read
    BatchGetItem's items in plain JSON."""
    events = client.meta.events
    events.register("before-parse.dynamodb.BatchGetItem", _items_by_json)
    # on the service level and last: after the call recorder's handler, which reads the table names
    events.register_last("before-parameter-build.dynamodb", _take_items)
    for operation in _ITEMS_PARAMETER:
        events.register(f"before-call.dynamodb.{operation}", _put_items)


#: The parameter holding a call's items (or keys), and the empty value botocore serializes in its place.
_ITEMS_PARAMETER: dict[str, tuple[str, type]] = {
    "TransactWriteItems": ("TransactItems", list),
    "BatchGetItem": ("RequestItems", dict),
}


def _take_items(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    name, kind = _ITEMS_PARAMETER.get(getattr(model, "name", None) or "", (None, None))
    if name is not None and isinstance(params.get(name), kind):
        context[_STASH] = (name, params[name])
        params[name] = kind()  # botocore serializes an empty one; the body gets the real one below


def _put_items(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    stashed = context.pop(_STASH, None)
    if stashed is None:
        return
    name, value = stashed
    body = json.loads(params["body"])
    body[name] = value
    try:
        params["body"] = orjson.dumps(body, default=_binary)
    except TypeError:  # what orjson refuses (a lone surrogate...): the json module, as botocore would
        params["body"] = _ENCODER.encode(body).encode()


def _binary(value: Any) -> str:
    """Bytes as DynamoDB's JSON protocol carries them: base64 text."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    inner = getattr(value, "value", None)  # boto3.dynamodb.types.Binary
    if isinstance(inner, (bytes, bytearray)):
        return base64.b64encode(inner).decode()
    raise TypeError(f"{type(value).__name__} cannot go into a DynamoDB request")


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_binary)


def _items_by_json(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    if response_dict.get("status_code") != 200:
        return  # errors: botocore's own parsing (codes, messages, modeled fields)
    body = response_dict.get("body")
    if not isinstance(body, (bytes, bytearray)) or b'"Responses"' not in body:
        return
    try:
        data = orjson.loads(body)
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
    response_dict["body"] = orjson.dumps(data)  # what is left: botocore parses it as usual
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
