"""Helpers for the prepare/contain/restore/lift tests: an application role, a context, real writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from recovery_helpers.aws import Aws, error_code
from recovery_helpers.context import Context, open_context
from recovery_helpers.items import KeySchema


def make_app_role(aws: Aws, role: str, table: str, *, trust_account: bool = True, allow: bool = True) -> str:
    """An application role: trusted by the account (or only by Lambda), allowed dynamodb:* on ``table``."""
    principal = (
        {"AWS": f"arn:aws:iam::{aws.account_id}:root"}
        if trust_account
        else {"Service": "lambda.amazonaws.com"}
    )
    arn = aws.iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
            }
        ),
    )["Role"]["Arn"]
    if allow:
        table_arn = f"arn:aws:dynamodb:{aws.region}:{aws.account_id}:table/{table}"
        aws.iam.put_role_policy(
            RoleName=role,
            PolicyName="app-rw",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "dynamodb:*",
                            "Resource": [table_arn, f"{table_arn}/index/*"],
                        }
                    ],
                }
            ),
        )
    return arn


def context(aws: Aws, tmp_path: Path, table: str, incident_id: str = "inc-1") -> Context:
    return open_context(incident_id, table, aws.region, aws.endpoint_url, str(tmp_path / "runs"), aws=aws)


def attempt(call: Any) -> str:
    """Run a real write; "ok", "denied" or the error code."""
    try:
        call()
        return "ok"
    except ClientError as exc:
        code = error_code(exc) or ""
        return "denied" if code in ("AccessDeniedException", "AccessDenied", "403") else code


def real_writes(ddb: Any, table: str, schema: KeySchema, key: dict, other: dict) -> dict[str, Any]:
    """Writes an application would really make (they change data when allowed), one per path."""
    names = schema.names
    where = " AND ".join(f'"{n}" = ?' for n in names)
    values = ", ".join(f"'{n}': ?" for n in names)
    params = [key[n] for n in names]
    return {
        "PutItem": lambda: ddb.put_item(TableName=table, Item={**key, "v": {"S": "put"}}),
        "UpdateItem": lambda: ddb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": "upd"}},
        ),
        "DeleteItem": lambda: ddb.delete_item(TableName=table, Key=key),
        "BatchWriteItem": lambda: ddb.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": other}}]}
        ),
        "TransactWriteItems": lambda: ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": table, "Item": other}}]
        ),
        "PartiQL INSERT": lambda: ddb.execute_statement(
            Statement=f'INSERT INTO "{table}" VALUE {{{values}}}', Parameters=[other[n] for n in names]
        ),
        "PartiQL UPDATE": lambda: ddb.execute_statement(
            Statement=f"UPDATE \"{table}\" SET v = 'pq' WHERE {where}", Parameters=params
        ),
        "PartiQL DELETE": lambda: ddb.execute_statement(
            Statement=f'DELETE FROM "{table}" WHERE {where}', Parameters=params
        ),
    }
