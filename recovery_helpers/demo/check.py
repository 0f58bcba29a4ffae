"""Checking a recovery against the demo incident's ground truth: the whole live table against the model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..aws import Aws
from ..items import canonical_json, from_json_safe
from .stage import KEY, DemoIncident


@dataclass
class CheckResult:
    ok: bool
    missing: list[str]
    unexpected: list[str]
    different: list[str]
    corrupted_left: list[str]

    def lines(self) -> list[str]:
        if self.ok:
            return [
                "table matches the ground truth: every corrupted item recovered, no legitimate write lost"
            ]
        out = []
        for name in ("corrupted_left", "missing", "unexpected", "different"):
            values = getattr(self, name)
            if values:
                out.append(f"{name.replace('_', ' ')}: {len(values)} (e.g. {values[:3]})")
        return out


def check(admin: Aws, incident: DemoIncident) -> CheckResult:
    """Compare the whole live table with the model of what it must be after a correct recovery."""
    expected = {}
    for line in Path(incident.expected_file).read_text().splitlines():
        item = from_json_safe(json.loads(line))
        expected[KEY.key_id(KEY.key_of(item))] = canonical_json(item)
    live = {}
    for page in admin.dynamodb.get_paginator("scan").paginate(
        TableName=incident.table_name, ConsistentRead=True
    ):
        for item in page["Items"]:
            live[KEY.key_id(KEY.key_of(item))] = canonical_json(item)
    truth = {json.loads(line)["key_id"] for line in Path(incident.ground_truth_file).read_text().splitlines()}
    missing = sorted(set(expected) - set(live))
    unexpected = sorted(set(live) - set(expected))
    different = sorted(k for k in set(live) & set(expected) if live[k] != expected[k])
    corrupted_left = sorted(truth & set(missing + unexpected + different))
    return CheckResult(
        not (missing or unexpected or different), missing, unexpected, different, corrupted_left
    )
