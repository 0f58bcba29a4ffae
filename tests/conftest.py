"""Shared fixtures: one sandbox per test process (moto's state is process-global), unique table names."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from recovery_helpers.aws import Aws
from recovery_helpers.sandbox import Sandbox, SandboxSettings

_counter = itertools.count()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The embedded AWS, IAM enforced, with the process environment pointing at it (for kernels too)."""
    with Sandbox(export_min_window_seconds=1) as sb:
        saved = {k: os.environ.get(k) for k in [*sb.env(), "AWS_PROFILE", "AWS_SESSION_TOKEN"]}
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.update(sb.env())
        try:
            yield sb
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(autouse=True)
def _restore_sandbox_settings(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests may turn knobs (latency, faults); put them back after each test."""
    yield
    if "sandbox" in request.fixturenames:
        sb: Sandbox = request.getfixturevalue("sandbox")
        defaults = SandboxSettings(export_min_window_seconds=1)
        sb.configure(**defaults.as_dict())


@pytest.fixture
def aws(sandbox: Sandbox) -> Aws:
    """Runbook-side clients as the sandbox administrator."""
    session = boto3.session.Session(
        aws_access_key_id=sandbox.admin_access_key_id,
        aws_secret_access_key=sandbox.admin_secret_access_key,
        region_name=sandbox.region,
    )
    return Aws(region=sandbox.region, endpoint_url=sandbox.endpoint_url, session=session)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A table/resource name no other test uses."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    return f"{base}-{next(_counter)}"


def create_table(
    ddb: Any,
    name: str,
    *,
    hash_key: tuple[str, str] = ("pk", "S"),
    range_key: tuple[str, str] | None = ("sk", "S"),
    pitr: bool = True,
    gsi: tuple[str, str] | None = None,
) -> str:
    """Create an on-demand table (optionally with a GSI on one attribute) and enable PITR."""
    attrs = {hash_key[0]: hash_key[1]}
    schema = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
    if range_key:
        attrs[range_key[0]] = range_key[1]
        schema.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
    kwargs: dict[str, Any] = {}
    if gsi:
        attrs[gsi[0]] = gsi[1]
        kwargs["GlobalSecondaryIndexes"] = [
            {
                "IndexName": f"by-{gsi[0]}",
                "KeySchema": [{"AttributeName": gsi[0], "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    ddb.create_table(
        TableName=name,
        KeySchema=schema,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": t} for k, t in attrs.items()],
        **kwargs,
    )
    if pitr:
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    return name


def table_names(ddb: Any) -> set[str]:
    """Every table name (ListTables answers 100 at a time; the shared sandbox holds more)."""
    names: set[str] = set()
    for page in ddb.get_paginator("list_tables").paginate():
        names.update(page["TableNames"])
    return names
