"""Generated pairs of FULL exports in AWS's layout, with known differences and known traps (tests, benchmarks).

``write_pair(root, items=N)`` writes ``root/before`` and ``root/after`` as AWS does
(``AWSDynamoDB/<ExportId>/manifest-summary.json``, ``manifest-files.json``, ``data/*.json.gz``) and returns the
differences a correct comparison reports. Every attribute type appears (S, N, B, BOOL, NULL, SS, NS, BS, M, L,
nested); a share of the items is rewritten in the "after" export in another but equal form (attributes, map keys
and set elements reordered, numbers in another notation such as ``1.50`` / ``15E-1``), which must NOT be
reported; a share really differs, among them 38-digit numbers differing only in their last digit.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEY_KINDS = ("string", "number", "binary")


@dataclass
class Expected:
    """What a correct comparison of the pair reports: canonical key text -> classification."""

    before_items: int = 0
    after_items: int = 0
    differences: dict[str, str] = field(default_factory=dict)
    traps: int = 0

    def counts(self) -> dict[str, int]:
        out = {"changed": 0, "deleted": 0, "created": 0}
        for c in self.differences.values():
            out[c] += 1
        return out


def _key(i: int, key_kind: str, with_range: bool) -> dict[str, Any]:
    if key_kind == "string":
        key: dict[str, Any] = {"pk": {"S": f"tenant-{i % 97}#item-{i}"}}
    elif key_kind == "number":
        key = {"pk": {"N": str(i * 3 + 1)}}
    else:
        key = {"pk": {"B": base64.b64encode(i.to_bytes(6, "big") + b"\x00\xff").decode()}}
    if with_range:
        key["sk"] = {"N": str(i % 7)} if key_kind != "number" else {"S": f"v{i % 7}"}
    return key


def _item(rng: random.Random, i: int, key: dict[str, Any]) -> dict[str, Any]:
    item = dict(key)
    item["name"] = {"S": f"customer {i} \u00e9\u4e2d"}
    item["amount"] = {"N": f"{rng.randint(0, 10**6)}.{rng.randint(1, 99):02d}"}
    item["big"] = {"N": str(10**37 + rng.randint(0, 10**30) * 10 + 1)}  # 38 digits
    item["active"] = {"BOOL": bool(i % 2)}
    if i % 5 == 0:
        item["gone"] = {"NULL": True}
    item["tags"] = {"SS": [f"t{j}" for j in range(i % 4 + 1)]}
    item["scores"] = {"NS": ["1.5", "2", "-3.25", str(i % 11 + 10)]}
    item["blobs"] = {"BS": [base64.b64encode(bytes([j, i % 251])).decode() for j in range(2)]}
    item["raw"] = {"B": base64.b64encode(i.to_bytes(4, "big")).decode()}
    item["address"] = {
        "M": {
            "city": {"S": "Zurich"},
            "zip": {"N": str(8000 + i % 100)},
            "geo": {"M": {"lat": {"N": "47.37"}, "lon": {"N": "8.54"}}},
        }
    }
    item["history"] = {"L": [{"N": "1"}, {"S": "x"}, {"M": {"a": {"SS": ["p", "q"]}}}, {"L": []}]}
    if i % 13 == 0:
        item[f"rare_{i % 3}"] = {"S": "only on a few items"}  # attributes a sample would miss
    return item


def _equal_rewrite(item: dict[str, Any]) -> dict[str, Any]:
    """The same item value written differently: reordered attributes, map keys, set elements; other notation."""
    out = dict(reversed(list(item.items())))
    out["tags"] = {"SS": list(reversed(item["tags"]["SS"]))}
    out["scores"] = {"NS": ["2.0", "15E-1", "-3.250", *reversed(item["scores"]["NS"][3:])]}
    out["blobs"] = {"BS": list(reversed(item["blobs"]["BS"]))}
    whole, frac = item["amount"]["N"].split(".")
    out["amount"] = {"N": f"{whole}{frac}E-{len(frac)}" if int(whole) else f"0.{frac}0"}
    address = item["address"]["M"]
    out["address"] = {
        "M": {
            "geo": {"M": {"lon": {"N": "8.540"}, "lat": {"N": "4737E-2"}}},
            "zip": address["zip"],
            "city": address["city"],
        }
    }
    out["big"] = {"N": item["big"]["N"] + ".000"}
    return out


def _real_change(rng: random.Random, item: dict[str, Any], n: int) -> dict[str, Any]:
    out = json.loads(json.dumps(item))
    kind = n % 5
    if kind == 0:  # a 38-digit number one unit off in its last digit
        out["big"] = {"N": str(int(item["big"]["N"]) + 1)}
    elif kind == 1:
        out["tags"] = {"SS": [*item["tags"]["SS"], "intruder"]}
    elif kind == 2:
        out["address"]["M"]["geo"]["M"]["lat"] = {"N": "47.371"}
    elif kind == 3:
        out["history"] = {"L": list(reversed(item["history"]["L"]))}  # lists keep their order
    else:
        out.pop("name")
    return out


def pair_items(
    items: int,
    *,
    differing: float = 0.02,
    traps: float = 0.02,
    seed: int = 7,
    key_kind: str = "string",
    with_range: bool = True,
) -> Iterator[tuple[str, dict[str, Any] | None, dict[str, Any] | None, str | None, bool]]:
    """``(key_text, before, after, classification, is_trap)`` for every key of a generated pair."""
    from .canonical import key_text

    if key_kind not in KEY_KINDS:
        raise ValueError(f"key_kind must be one of {KEY_KINDS}")
    names = ("pk", "sk") if with_range else ("pk",)
    rng = random.Random(seed)
    for i in range(items):
        key = _key(i, key_kind, with_range)
        before = _item(rng, i, key)
        roll = rng.random()
        if roll < differing:
            n = int(roll / differing * 1000)
            if n % 10 == 0:
                yield key_text(key, names), before, None, "deleted", False
            elif n % 10 == 1:
                yield key_text(key, names), None, before, "created", False
            else:
                yield key_text(key, names), before, _real_change(rng, before, n), "changed", False
        elif roll < differing + traps:
            yield key_text(key, names), before, _equal_rewrite(before), None, True
        else:
            yield key_text(key, names), before, before, None, False


class ExportWriter:
    """Writes one FULL export in AWS's layout under ``root`` (local folder), spread over several data files."""

    def __init__(
        self,
        root: Path,
        export_id: str,
        *,
        items_per_file: int = 50_000,
        prefix: str = "exports",
        reverse: bool = False,
    ):
        self.root = Path(root)
        self.export_id = export_id
        self.base = f"{prefix}/AWSDynamoDB/{export_id}"
        self.dir = self.root / "AWSDynamoDB" / export_id
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.items_per_file = items_per_file
        self.reverse = reverse
        self.manifest: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self.total = 0

    def add(self, item: dict[str, Any]) -> None:
        self.lines.append(json.dumps({"Item": item}, separators=(",", ":"), ensure_ascii=False))
        if len(self.lines) >= self.items_per_file:
            self._flush()

    def _flush(self) -> None:
        if not self.lines:
            return
        name = f"{hashlib.sha1(f'{self.export_id}{len(self.manifest)}'.encode()).hexdigest()[:26]}.json.gz"
        lines = self.lines[::-1] if self.reverse else self.lines
        data = gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1)
        (self.dir / "data" / name).write_bytes(data)
        md5 = hashlib.md5(data)
        self.manifest.append(
            {
                "itemCount": len(self.lines),
                "md5Checksum": base64.b64encode(md5.digest()).decode(),
                "etag": md5.hexdigest(),
                "dataFileS3Key": f"{self.base}/data/{name}",
            }
        )
        self.total += len(self.lines)
        self.lines = []

    def close(self, export_time: str = "2026-01-01T00:00:00Z") -> Path:
        self._flush()
        files_key = f"{self.base}/manifest-files.json"
        (self.dir / "manifest-files.json").write_text("".join(json.dumps(m) + "\n" for m in self.manifest))
        summary = {
            "version": "2020-06-30",
            "exportArn": f"arn:aws:dynamodb:us-east-1:000000000000:table/t/export/{self.export_id}",
            "exportTime": export_time,
            "manifestFilesS3Key": files_key,
            "itemCount": self.total,
            "outputFormat": "DYNAMODB_JSON",
            "exportType": "FULL_EXPORT",
        }
        (self.dir / "manifest-summary.json").write_text(json.dumps(summary, indent=2))
        return self.dir


def write_pair(root: Path, items: int, *, items_per_file: int = 50_000, **options: Any) -> Expected:
    """Write ``root/before`` and ``root/after`` (AWS layout) and return what a correct comparison reports.

    The "after" export lists its items in another order than the "before" (exports promise no order).
    """
    root = Path(root)
    before = ExportWriter(root / "before", "01700000000000-before", items_per_file=items_per_file)
    after = ExportWriter(root / "after", "01700000000001-after", items_per_file=items_per_file, reverse=True)
    expected = Expected()
    for text, b, a, classification, trap in pair_items(items, **options):
        if b is not None:
            before.add(b)
            expected.before_items += 1
        if a is not None:
            after.add(a)
            expected.after_items += 1
        if classification:
            expected.differences[text] = classification
        expected.traps += trap
    before.close()
    after.close("2026-01-01T01:00:00Z")
    return expected
