"""IAM for DynamoDB as AWS evaluates it: the real action behind every write path, on the table's ARN.

Moto authorises a DynamoDB request by its API name against Resource "*": a Deny of PutItem does not stop a
TransactWriteItems that puts, PartiQL statements are checked as "ExecuteStatement", and table ARNs in policies
are never matched. Here each request is mapped to the IAM actions AWS checks (TransactWriteItems -> PutItem,
UpdateItem, DeleteItem, ConditionCheckItem per element; ExecuteStatement -> PartiQLSelect/Insert/Update/Delete;
restores -> the restore action on the source plus write actions on the target) and each is evaluated against
the caller's policies with the table (or index) ARN. A refusal is AWS's ``AccessDeniedException`` (HTTP 400).
It also refuses data-plane calls on a restored table that is still CREATING, as AWS does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from . import iam_conditions, restores

_PARTIQL_TABLE = re.compile(
    r'(?:\bFROM|\bINTO|^\s*UPDATE)\s+"?([A-Za-z0-9_.\-]+?)"?(?:\.|\s|$)', re.IGNORECASE
)
_RESTORE_TARGET_ACTIONS = (
    "BatchWriteItem",
    "DeleteItem",
    "GetItem",
    "PutItem",
    "Query",
    "Scan",
    "UpdateItem",
)
_DATA_PLANE_SINGLE = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"}
_BLOCKED_WHILE_CREATING = {
    "UpdateTable",
    "TagResource",
    "UntagResource",
    "UpdateTimeToLive",
    "UpdateContinuousBackups",
    "CreateBackup",
    "ExportTableToPointInTime",
}


def authorize_dynamodb(self: Any, resource: str = "*") -> None:
    """Replacement for moto's per-request check on the DynamoDB handler."""
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin

    op = self._get_action()
    if ActionAuthenticatorMixin.request_count >= moto_settings.INITIAL_NO_AUTH_ACTION_COUNT:
        from moto.core.exceptions import InvalidClientTokenIdError, SignatureDoesNotMatchError

        try:
            _check_permissions(self, op)
        except InvalidClientTokenIdError as exc:  # DynamoDB speaks JSON errors, not IAM's XML
            raise restores._error(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            ) from exc
        except SignatureDoesNotMatchError as exc:
            raise restores._error(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            ) from exc
    else:
        ActionAuthenticatorMixin.request_count += 1
    _check_table_ready(self, op)


def _check_permissions(handler: Any, op: str) -> None:
    from moto.iam.access_control import IAMPolicy, IAMRequest, PermissionResult

    parsed_url = urlparse(handler.uri)
    path = handler.raw_path + ("?" + parsed_url.query if parsed_url.query else "")
    request = IAMRequest(
        account_id=handler.current_account,
        method=handler.method,
        path=path,
        data=handler.data,
        body=handler.raw_body,
        headers=handler.headers,
        action=op,
    )
    request.check_signature()
    policies = [IAMPolicy(p) for p in request._access_key.collect_policies()]
    arn_prefix = f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/"
    context = {"aws:requestedregion": [handler.region]}  # a DynamoDB request holds no other key modelled
    for action, table in iam_actions(op, handler.body or {}):
        resource = arn_prefix + table if table else "*"
        with iam_conditions.in_context(context):
            verdicts = [p.is_action_permitted(f"dynamodb:{action}", resource) for p in policies]
        if PermissionResult.DENIED in verdicts:
            why = "with an explicit deny in an identity-based policy"
        elif PermissionResult.PERMITTED in verdicts:
            continue
        else:
            why = f"because no identity-based policy allows the dynamodb:{action} action"
        raise restores._error(
            "AccessDeniedException",
            f"User: {request._access_key.arn} is not authorized to perform: dynamodb:{action} "
            f"on resource: {resource} {why}",
        )


def iam_actions(op: str, body: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """(IAM action, table[/index/name]) pairs AWS checks for one DynamoDB request."""
    if op in _DATA_PLANE_SINGLE:
        table = body.get("TableName")
        if op in ("Query", "Scan") and body.get("IndexName"):
            table = f"{table}/index/{body['IndexName']}"
        yield op, table
    elif op in ("BatchWriteItem", "BatchGetItem"):
        for table in body.get("RequestItems") or {}:
            yield op, table
    elif op == "TransactWriteItems":
        names = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        for element in body.get("TransactItems") or []:
            for kind, request in element.items():
                yield names.get(kind, kind), request.get("TableName")
    elif op == "TransactGetItems":
        for element in body.get("TransactItems") or []:
            yield "GetItem", element.get("Get", {}).get("TableName")
    elif op == "ExecuteStatement":
        yield _partiql_action(body.get("Statement", ""))
    elif op in ("BatchExecuteStatement", "ExecuteTransaction"):
        key = "Statements" if op == "BatchExecuteStatement" else "TransactStatements"
        for statement in body.get(key) or []:
            yield _partiql_action(statement.get("Statement", ""))
    elif op == "RestoreTableToPointInTime":
        source = body.get("SourceTableName") or str(body.get("SourceTableArn", "")).split("/")[-1]
        yield op, source
        for action in _RESTORE_TARGET_ACTIONS:
            yield action, body.get("TargetTableName")
    elif op == "RestoreTableFromBackup":
        backup_arn = str(body.get("BackupArn", ""))
        yield op, backup_arn.split(":table/")[-1] if ":table/" in backup_arn else None
        for action in _RESTORE_TARGET_ACTIONS:
            yield action, body.get("TargetTableName")
    elif op == "ListTables":
        yield op, None
    else:
        arn = (
            body.get("TableArn") or body.get("ResourceArn") or body.get("ExportArn") or body.get("BackupArn")
        )
        yield (
            op,
            body.get("TableName") or _table_from_arn(arn),
        )  # e.g. table/t/export/<id>, table/t/backup/<id>


def _partiql_action(statement: str) -> tuple[str, str | None]:
    verb = statement.strip().split(None, 1)[0].upper() if statement.strip() else "SELECT"
    action = {
        "SELECT": "PartiQLSelect",
        "INSERT": "PartiQLInsert",
        "UPDATE": "PartiQLUpdate",
        "DELETE": "PartiQLDelete",
    }.get(verb, "PartiQLSelect")
    match = _PARTIQL_TABLE.search(statement)
    return action, match.group(1) if match else None


def _table_from_arn(arn: str | None) -> str | None:
    if not arn or ":table/" not in arn:
        return None
    return arn.split(":table/", 1)[1]


def _tables_in(op: str, body: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for _, table in iam_actions(op, body):
        if table and op not in ("RestoreTableToPointInTime", "RestoreTableFromBackup"):
            names.add(table.split("/index/")[0].split("/backup/")[0])
    return names


def _check_table_ready(handler: Any, op: str) -> None:
    """AWS answers data-plane calls on a CREATING table with ResourceNotFoundException, control calls with
    ResourceInUseException."""
    from moto.dynamodb.exceptions import ResourceInUseException, ResourceNotFoundException

    body = handler.body or {}
    backend = handler.dynamodb_backend
    for name in _tables_in(op, body):
        table = backend.tables.get(name)
        if table is None or not restores.is_creating(table):
            continue
        if op in _BLOCKED_WHILE_CREATING:
            raise ResourceInUseException(f"Table is being created: {name}")
        if op not in (
            "DescribeTable",
            "DescribeContinuousBackups",
            "ListTagsOfResource",
            "DeleteTable",
            "DescribeTimeToLive",
        ):
            raise ResourceNotFoundException(table_name=name)


def allow_account_principals() -> None:
    """Trust policies naming an account (``arn:aws:iam::ACCOUNT:root`` or ``ACCOUNT``) trust every principal of
    that account, as on AWS; moto only matches exact principal ARNs."""
    from moto.iam.access_control import IAMPolicyStatement

    original = IAMPolicyStatement._check_principal

    def _check_principal(self: Any, principal: str) -> bool:
        expected = self._statement.get("Principal") or {}
        aws = expected.get("AWS") if isinstance(expected, dict) else None
        if expected and aws is None:
            return False  # a Service/Federated principal: no IAM user or role of ours matches (moto crashed here)
        if original(self, principal):
            return True
        values = aws if isinstance(aws, list) else [aws]
        account = principal.split(":")[4] if principal and principal.count(":") >= 5 else None
        return account is not None and any(v in (account, f"arn:aws:iam::{account}:root") for v in values)

    IAMPolicyStatement._check_principal = _check_principal


def scope_other_services() -> None:
    """Evaluate SSM, IAM policy and CloudWatch Logs actions against the resource's ARN, as AWS does.

    moto checks them against ``Resource: "*"`` only, so a least-privilege policy naming the parameter, policy or
    log group would be refused. Each handler gets the ARN AWS uses for the request's resource.
    """
    from moto.iam.responses import IamResponse
    from moto.logs.responses import LogsResponse
    from moto.ssm.responses import SimpleSystemManagerResponse

    def ssm_resource(self: Any) -> str:
        name = _param(self, "Name")
        if not name:
            return "*"
        return f"arn:aws:ssm:{self.region}:{self.current_account}:parameter/{name.lstrip('/')}"

    def logs_resource(self: Any) -> str:
        name = _param(self, "logGroupName")
        if not name:
            return "*"
        return f"arn:aws:logs:{self.region}:{self.current_account}:log-group:{name}:*"

    role_resource = IamResponse._determine_resource

    def iam_resource(self: Any) -> str:
        found = role_resource(self)
        if found != "*":
            return found
        policy_arn = _param(self, "PolicyArn")
        if policy_arn:
            return policy_arn
        policy_name = _param(self, "PolicyName")
        if policy_name and _param(self, "Action") == "CreatePolicy":
            path = _param(self, "Path") or "/"
            return f"arn:aws:iam::{self.current_account}:policy{path}{policy_name}"
        return "*"

    SimpleSystemManagerResponse._determine_resource = ssm_resource
    LogsResponse._determine_resource = logs_resource
    IamResponse._determine_resource = iam_resource
    for handler in (SimpleSystemManagerResponse, LogsResponse):
        handler._authenticate_and_authorize_normal_action = _json_denials(
            handler._authenticate_and_authorize_normal_action
        )


def _json_denials(check: Any) -> Any:
    """JSON-protocol services answer a refusal with ``AccessDeniedException`` in JSON (moto sends IAM's XML)."""
    from moto.core.exceptions import AccessDeniedError, JsonRESTError

    def wrapper(self: Any, resource: str = "*") -> None:
        try:
            check(self, resource)
        except AccessDeniedError as exc:
            raise JsonRESTError("AccessDeniedException", f"{exc.message} on resource: {resource}") from exc

    return wrapper


def _param(handler: Any, name: str) -> str | None:
    """A request parameter from a JSON body or a query-protocol form, whichever the handler parsed."""
    for source in (
        getattr(handler, "params", None),
        getattr(handler, "data", None),
        getattr(handler, "querystring", None),
    ):
        if isinstance(source, dict) and name in source:
            value = source[name]
            value = value[0] if isinstance(value, list) and value else value
            if isinstance(value, str):
                return value
    try:
        import json

        body = json.loads(getattr(handler, "body", "") or "{}")
        value = body.get(name) if isinstance(body, dict) else None
        return value if isinstance(value, str) else None
    except (TypeError, ValueError):
        return None
