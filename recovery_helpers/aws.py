"""The one place that builds AWS clients: endpoint, region, retries and credentials are decided here."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

from .errors import InputError, NotReadyError, PermissionDeniedError, RecoveryError

#: botocore's standard retry mode: exponential backoff with jitter, retries throttling, 5xx and dropped
#: connections. 10 attempts rides out a throttled burst; the engine adds its own rate limit on top.
DEFAULT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 10},
    connect_timeout=10,
    read_timeout=60,
    max_pool_connections=64,
)


@dataclass
class Aws:
    """Clients for one region and endpoint. ``endpoint_url=None`` means the SDK's own resolution.

    Every runbook function takes an ``Aws`` (never builds clients itself), so tests and the sandbox inject one.
    """

    region: str = "us-east-1"
    endpoint_url: str | None = None
    session: Any = None
    config: Config = field(default_factory=lambda: DEFAULT_CONFIG)
    #: Called with one dict per AWS call (see :class:`CallRecorder`); None records nothing.
    recorder: Callable[[dict[str, Any]], None] | None = None
    #: Set on every recorded call as ``"as"`` (e.g. ``"probe"``: the application role's calls of a write probe).
    call_tag: str | None = None

    def __post_init__(self) -> None:
        if self.session is None:
            self.session = boto3.session.Session(region_name=self.region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """A cached boto3 client for ``service``."""
        if service not in self._clients:
            client = self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url, config=self.config
            )
            if self.recorder is not None:
                _watch(client, self)
            self._clients[service] = client
        return self._clients[service]

    def set_recorder(self, recorder: Callable[[dict[str, Any]], None]) -> None:
        """Start reporting every call (clients made before included) to ``recorder``."""
        if self.recorder is None:
            self.recorder = recorder
            for client in self._clients.values():
                _watch(client, self)
        else:
            self.recorder = recorder

    @property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @property
    def iam(self) -> Any:
        return self.client("iam")

    @property
    def ssm(self) -> Any:
        return self.client("ssm")

    @property
    def sts(self) -> Any:
        return self.client("sts")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def logs(self) -> Any:
        return self.client("logs")

    @functools.cached_property
    def caller_arn(self) -> str:
        """The identity this runbook acts as (recorded with every action in the incident timeline)."""
        try:
            return self.sts.get_caller_identity()["Arn"]
        except (ClientError, NoCredentialsError, EndpointConnectionError) as exc:
            raise explain(exc, "sts:GetCallerIdentity") from exc

    @functools.cached_property
    def account_id(self) -> str:
        return self.caller_arn.split(":")[4]

    def with_credentials(self, credentials: dict[str, str]) -> Aws:
        """The same region and endpoint, as another identity (an STS Credentials dict)."""
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials.get("SessionToken"),
            region_name=self.region,
        )
        return Aws(
            region=self.region,
            endpoint_url=self.endpoint_url,
            session=session,
            config=self.config,
            recorder=self.recorder,
            call_tag=self.call_tag,
        )

    def with_config(self, config: Config, *, call_tag: str | None = None) -> Aws:
        """The same session, endpoint and call recorder, with ``config`` merged over this one's.

        The caller's identity, once resolved, carries over, so the calls of the copy are recorded under it.
        ``call_tag`` marks the copy's recorded calls (else this one's tag carries over).
        """
        other = Aws(
            region=self.region,
            endpoint_url=self.endpoint_url,
            session=self.session,
            config=self.config.merge(config),
            recorder=self.recorder,
            call_tag=call_tag or self.call_tag,
        )
        known = self.known_caller_arn()
        if known is not None:
            other.caller_arn = known  # fills the cached property: no STS call
        return other

    def known_caller_arn(self) -> str | None:
        """The caller's ARN if already resolved, else None (never calls STS)."""
        return self.__dict__.get("caller_arn")

    def assume_role(self, role_arn: str, session_name: str = "recovery-probe") -> Aws:
        """Act as ``role_arn`` (used to verify containment as the application would see it)."""
        try:
            answer = self.sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)
        except ClientError as exc:
            raise explain(exc, "sts:AssumeRole", role_arn) from exc
        other = self.with_credentials(answer["Credentials"])
        assumed = (answer.get("AssumedRoleUser") or {}).get("Arn")
        if assumed:
            other.caller_arn = assumed  # known from the answer: no GetCallerIdentity needed
        return other


#: Request parameters worth naming in the record of a call: identifiers only, never item contents or secrets.
RESOURCE_PARAMS = (
    "TableName",
    "TargetTableName",
    "SourceTableName",
    "BackupArn",
    "TableArn",
    "ResourceArn",
    "ExportArn",
    "RoleName",
    "RoleArn",
    "PolicyArn",
    "PolicyName",
    "Name",
    "logGroupName",
    "Bucket",
    "S3Bucket",
    "IndexName",
)
#: Item-level operations: counted in aws-calls.jsonl, their effects are in the patch journal and backup.
ITEM_OPERATIONS = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "ExecuteStatement",
    "BatchExecuteStatement",
    "ExecuteTransaction",
    "PutLogEvents",
}
_MUTATING_PREFIXES = (
    "Create",
    "Delete",
    "Put",
    "Update",
    "Attach",
    "Detach",
    "Restore",
    "Tag",
    "Untag",
    "Enable",
    "Disable",
    "Export",
    "Set",
    "Remove",
    "Add",
    "Import",
)


def is_control_change(operation: str) -> bool:
    """A call that changes AWS resources (not items): these go into the incident timeline one by one."""
    return operation not in ITEM_OPERATIONS and operation.startswith(_MUTATING_PREFIXES)


def _watch(client: Any, aws: Aws) -> None:
    """Report every call of this client to ``aws.recorder``: operation, resource names, outcome, caller."""
    service = client.meta.service_model.service_name

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        named = {k: params[k] for k in RESOURCE_PARAMS if isinstance(params.get(k), str)}
        tables = set(params.get("RequestItems") or {})  # BatchGetItem / BatchWriteItem
        for element in params.get("TransactItems") or []:
            tables.update(op.get("TableName") for op in element.values() if isinstance(op, dict))
        if tables - {None}:
            named["TableNames"] = sorted(t for t in tables if t)
        context["recovery_resources"] = named

    def after(
        http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        error = (parsed or {}).get("Error", {}).get("Code")
        _emit(aws, service, model.name, context, "error" if error else "ok", error)

    def failed(exception: BaseException, model: Any = None, context: Any = None, **_: Any) -> None:
        if exception is not None:
            _emit(aws, service, getattr(model, "name", "?"), context or {}, "error", type(exception).__name__)

    events = client.meta.events
    events.register(f"before-parameter-build.{service}", remember)
    events.register(f"after-call.{service}", after)
    events.register(f"after-call-error.{service}", failed)


def _emit(
    aws: Aws, service: str, operation: str, context: dict[str, Any], result: str, error: str | None
) -> None:
    if aws.recorder is None:
        return
    who = aws.known_caller_arn() or "(identity not yet known)"
    event: dict[str, Any] = {
        "service": service,
        "operation": operation,
        "who": who,
        "result": result,
        **context.get("recovery_resources", {}),
    }
    if error:
        event["error"] = error
    if aws.call_tag:
        event["as"] = aws.call_tag
    aws.recorder(event)


@functools.cache
def known_regions(service: str = "dynamodb") -> frozenset[str]:
    """The regions botocore knows ``service`` in, across every partition (aws, aws-cn, aws-us-gov...)."""
    session = boto3.session.Session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions(service, partition_name=partition)
    )


def validate_region(region: object) -> str:
    """Refuse a region DynamoDB does not exist in before any call (a typo would otherwise fail slowly later)."""
    if not isinstance(region, str) or not region.strip():
        raise InputError("region is required: the table's AWS region, e.g. 'us-east-1'.")
    known = known_regions()
    if region in known:
        return region
    normalized = "-".join(region.strip().lower().replace("_", " ").replace("-", " ").split())
    close = (
        [normalized]
        if normalized in known
        else sorted(difflib.get_close_matches(normalized, sorted(known), n=3, cutoff=0.75))
    )
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    raise InputError(
        f"region {region!r} is not an AWS region with DynamoDB{hint}: set region to the region of the table, "
        "e.g. 'us-east-1' or 'eu-west-1'. (If it is a region newer than your boto3, upgrade boto3.)"
    )


def describe_table(aws: Aws, name: str) -> dict[str, Any] | None:
    """DescribeTable's ``Table``, or None when the table does not exist (other errors explained)."""
    try:
        return aws.dynamodb.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise explain(exc, "dynamodb:DescribeTable", name) from exc


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    return getattr(exc, "response", {}).get("Error", {}).get("Code")


def explain(exc: BaseException, action: str, resource: str = "") -> RecoveryError:
    """Turn an AWS SDK failure into a sentence that says what happened and what to do."""
    where = f" on {resource}" if resource else ""
    if isinstance(exc, NoCredentialsError):
        return PermissionDeniedError(
            f"No AWS credentials found for {action}{where}. Set AWS_PROFILE or the AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY variables (for the sandbox: the lines `recovery sandbox` prints).",
            cause=exc,
        )
    if isinstance(exc, NoRegionError):
        return InputError("No AWS region given: set the `region` parameter.", cause=exc)
    if isinstance(exc, EndpointConnectionError):
        return NotReadyError(
            f"Could not reach AWS for {action}: {exc}. Check `region` and `endpoint_url` "
            "(is the sandbox running?).",
            cause=exc,
        )
    code = error_code(exc) or ""
    message = getattr(exc, "response", {}).get("Error", {}).get("Message", str(exc))
    if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"}:
        if "explicit deny" in message.lower():
            todo = (
                f"Remove the Deny of `{action}` that applies to the identity running the runbook, or run "
                "it as an identity the Deny does not cover"
            )
        else:
            todo = f"Grant `{action}` to the identity running the runbook"
        return PermissionDeniedError(
            f"AWS denied {action}{where}: {message}. {todo} (see the recovery-role policy printed by "
            "01_prepare), then run the step again.",
            cause=exc,
        )
    if code in {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }:
        return PermissionDeniedError(
            f"AWS rejected the credentials for {action}: {message}. Refresh them (aws sso login, or the "
            "sandbox's export lines) and run the cell again.",
            cause=exc,
        )
    if code in {"ResourceNotFoundException", "TableNotFoundException", "SourceTableNotFoundException"}:
        return InputError(
            f"{action}{where}: {message}. Check the table name and the region/account you are in.", cause=exc
        )
    return RecoveryError(f"{action}{where} failed with {code or type(exc).__name__}: {message}", cause=exc)
