"""Nothing secret reaches the run folder: a postmortem archive is shared widely, credentials must not be in it,
and attributes the reviewer masked stay masked in the HTML copies while the patch still restores them."""

from __future__ import annotations

import base64
import html
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from recovery_helpers import demo
from recovery_helpers.items import from_json_safe, normalize_number
from tests import least_privilege_support as lp

MASKED = ["thumb", "total"]

#: Things that look like AWS credentials, whoever they belong to (the app role's probe sessions included).
CREDENTIAL_PATTERNS = [
    re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    re.compile(r"aws_secret_access_key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{16,}", re.IGNORECASE),
    re.compile(r"aws_session_token[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{16,}", re.IGNORECASE),
    re.compile(r"\"(?:SecretAccessKey|SessionToken)\"\s*:\s*\"[^\"]{8,}", re.IGNORECASE),
]


@pytest.fixture(scope="module")
def masked_run(sandbox, tmp_path_factory):
    """The whole runbook as the recovery role, reviewing with ``total`` and ``thumb`` masked."""
    world = lp.stage(sandbox, tmp_path_factory.mktemp("leaks"), "leaks", mask_attributes=MASKED)
    result = world.run()
    assert result.ok, result.summary()
    return world


def _files(world) -> list[Path]:
    """Every file of the incident's run folder and of the setup's (both are archived)."""
    roots = [world.run_dir, world.base / "setup"]
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file())


def test_no_credential_is_written_to_the_run_folder(masked_run, sandbox):
    world = masked_run
    files = _files(world)
    names = {p.name for p in files}
    # the scan covers the whole archive: notebooks, HTML copies, record, calls, plan, approvals, backup, journal
    assert {
        "01_prepare.ipynb",
        "04_diff.html",
        "06_lift.html",
        "incident.json",
        "aws-calls.jsonl",
        "plan.jsonl",
        "plan.json",
        "approvals.json",
        "backup.jsonl",
        "journal.jsonl",
    } <= names
    secrets = {
        "administrator access key id": sandbox.admin_access_key_id,
        "administrator secret": sandbox.admin_secret_access_key,
        "recovery role access key id": world.credentials["AccessKeyId"],
        "recovery role secret": world.credentials["SecretAccessKey"],
        "recovery role session token": world.credentials["SessionToken"],
    }
    found = []
    for path in files:
        raw = path.read_bytes().decode("utf-8", errors="replace")
        for text in {raw, html.unescape(raw)}:
            found += [f"{what} in {path.name}" for what, value in secrets.items() if value in text]
            found += [
                f"{m.group(0)[:24]}... in {path.name}" for p in CREDENTIAL_PATTERNS for m in p.finditer(text)
            ]
    assert not found, sorted(set(found))


def test_masked_attributes_stay_masked_in_the_review_and_are_still_restored(masked_run):
    world = masked_run
    truth = [json.loads(x) for x in Path(world.incident.ground_truth_file).read_text().splitlines()]
    review = world.run_dir / "04_diff.html"
    text = html.unescape(review.read_text())
    assert "••••" in text  # the review did show masked cells

    for entry in truth:
        expected = from_json_safe(entry["expected"]) if entry["expected"] else None
        if entry["kind"] == "create" or expected is None:
            continue
        before = expected["total"]["N"]
        shown = _forms_of_number(before)
        if entry["kind"] == "update":  # the bug multiplied it by 100; that value was live during the review
            shown |= _forms_of_number(str(Decimal(before) * 100))
        shown |= _forms_of_binary(expected["thumb"]["B"])
        leaked = sorted(v for v in shown if v in text)
        assert not leaked, (
            f"masked values of {entry['key']} ({entry['kind']}) appear in {review.name}: {leaked}"
        )

    # ...while the patch put the real values back.
    victim = next(e for e in truth if e["kind"] == "update")
    expected = from_json_safe(victim["expected"])
    live = world.admin.dynamodb.get_item(
        TableName=world.incident.table_name, ConsistentRead=True, Key=demo.KEY.key_from_plain(victim["key"])
    )["Item"]
    assert Decimal(live["total"]["N"]) == Decimal(expected["total"]["N"])
    assert bytes(live["thumb"]["B"]) == bytes(expected["thumb"]["B"])
    outcome = demo.check(world.admin, world.incident)
    assert outcome.ok, outcome.lines()


def _forms_of_number(text: str) -> set[str]:
    return {text, normalize_number(text), str(Decimal(text))}


def _forms_of_binary(value: bytes) -> set[str]:
    raw = bytes(value)
    return {base64.b64encode(raw).decode(), raw.hex(), repr(raw)}
