"""One FULL export in AWS's layout, from a local folder or an ``s3://`` URI, checked against its manifests.

AWS writes ``<prefix>/AWSDynamoDB/<ExportId>/`` with ``manifest-summary.json`` (what and when; where
``manifest-files.json`` is), ``manifest-files.json`` (JSON lines: ``dataFileS3Key``, ``itemCount``,
``md5Checksum``) and ``data/*.json.gz``. ``--before``/``--after`` may name that export folder itself, or a folder
(prefix) holding exactly one ``AWSDynamoDB/<ExportId>/``. A local folder is what ``aws s3 sync`` leaves.

:func:`open_export` reads the manifests, refuses an incremental export (its lines are changes, not items),
checks every data file's MD5 (local files are hashed; S3 files are hashed while they are downloaded into
``download_dir``) and gives the local data files to an engine. With ``verify=False`` and an S3 URI nothing is
downloaded: the engine (Spark on EMR/Glue) reads the ``s3://`` paths itself and the item counts are checked
against the manifest instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import InputError, VerificationError

SUMMARY = "manifest-summary.json"
CHUNK = 1 << 20


@dataclass(frozen=True)
class ExportFiles:
    """An export ready for an engine: its summary, its manifest entries and where each data file is."""

    location: str
    summary: dict[str, Any]
    entries: list[dict[str, Any]]
    data_paths: list[str]  # local paths, or s3:// URIs when not downloaded

    @property
    def item_count(self) -> int:
        """Items the manifest promises (the sum over data files)."""
        return sum(int(e.get("itemCount") or 0) for e in self.entries)

    @property
    def export_time(self) -> str | None:
        return self.summary.get("exportTime")


def is_s3(location: str) -> bool:
    return str(location).startswith("s3://")


def open_export(
    location: str | Path, *, s3: Any = None, download_dir: Path | None = None, verify: bool = True
) -> ExportFiles:
    """The export at ``location`` (folder or ``s3://bucket/prefix``), its data files MD5-checked.

    ``s3`` is a boto3 S3 client (needed for ``s3://``); files are downloaded into ``download_dir``.
    """
    location = str(location)
    if is_s3(location):
        if s3 is None:
            raise InputError(f"{location} is on S3: an S3 client is needed to read it.")
        return _open_s3(location, s3, download_dir, verify)
    return _open_local(Path(location), verify)


# -- local folders ------------------------------------------------------------------------------------------
def _find_local_root(path: Path) -> Path:
    if not path.is_dir():
        raise InputError(
            f"{path} is not a folder: give the export's folder (the one with {SUMMARY}) or its prefix."
        )
    if (path / SUMMARY).is_file():
        return path
    candidates = sorted(p.parent for p in path.glob(f"AWSDynamoDB/*/{SUMMARY}"))
    candidates += sorted(p.parent for p in path.glob(f"*/AWSDynamoDB/*/{SUMMARY}"))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise InputError(
            f"no {SUMMARY} in {path} nor in {path}/AWSDynamoDB/<ExportId>/: this is not a DynamoDB export "
            "folder (copy it with `aws s3 sync s3://bucket/prefix/AWSDynamoDB/<ExportId> DIR`)."
        )
    raise InputError(
        f"{path} holds {len(candidates)} exports ({', '.join(c.name for c in candidates)}): name one of "
        "them (the AWSDynamoDB/<ExportId> folder)."
    )


def _local_data_file(root: Path, key: str) -> Path:
    """Where a manifest's ``dataFileS3Key`` is inside a copied export folder."""
    marker = f"/{root.name}/"
    relative = key.split(marker, 1)[1] if marker in f"/{key}" else f"data/{key.rsplit('/', 1)[-1]}"
    return root / relative


def _open_local(path: Path, verify: bool) -> ExportFiles:
    root = _find_local_root(path)
    summary = _summary(json.loads((root / SUMMARY).read_text()), str(root))
    files_path = root / "manifest-files.json"
    if not files_path.is_file():
        raise VerificationError(f"{files_path} is missing: the export folder is incomplete; copy it again.")
    entries = _entries(files_path.read_text(), str(files_path))
    paths = []
    for entry in entries:
        data = _local_data_file(root, entry["dataFileS3Key"])
        if not data.is_file():
            raise VerificationError(f"{data} (in the manifest) is missing: copy the export folder again.")
        if verify:
            digest = hashlib.md5()
            with open(data, "rb") as f:
                for chunk in iter(lambda: f.read(CHUNK), b""):
                    digest.update(chunk)
            _check_md5(entry, digest, str(data))
        paths.append(str(data))
    return ExportFiles(str(root), summary, entries, paths)


# -- S3 -----------------------------------------------------------------------------------------------------
def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.strip("/")


def _open_s3(uri: str, s3: Any, download_dir: Path | None, verify: bool) -> ExportFiles:
    bucket, prefix = _split(uri)
    summary_key = f"{prefix}/{SUMMARY}".lstrip("/")
    if not _exists(s3, bucket, summary_key):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/".lstrip("/"))
        found = [
            o["Key"]
            for page in pages
            for o in page.get("Contents", [])
            if o["Key"].endswith(f"/{SUMMARY}") and "/AWSDynamoDB/" in f"/{o['Key']}"
        ]
        if len(found) != 1:
            raise InputError(
                f"{uri} holds {len(found)} DynamoDB exports ({', '.join(found) or 'none'}): name the "
                "s3://bucket/prefix/AWSDynamoDB/<ExportId> of exactly one."
            )
        summary_key = found[0]
    summary = _summary(json.loads(_get(s3, bucket, summary_key).read()), f"s3://{bucket}/{summary_key}")
    files_key = summary.get("manifestFilesS3Key") or summary_key.rsplit("/", 1)[0] + "/manifest-files.json"
    entries = _entries(_get(s3, bucket, files_key).read().decode(), f"s3://{bucket}/{files_key}")
    if not verify:
        return ExportFiles(
            f"s3://{bucket}/{summary_key.rsplit('/', 1)[0]}",
            summary,
            entries,
            [f"s3://{bucket}/{e['dataFileS3Key']}" for e in entries],
        )
    if download_dir is None:
        raise InputError(f"{uri}: a download folder is needed to read an S3 export on this machine.")
    target = Path(download_dir)
    (target / "data").mkdir(parents=True, exist_ok=True)
    paths = []
    for i, entry in enumerate(entries):
        key = entry["dataFileS3Key"]
        local = target / "data" / f"{i:06d}-{key.rsplit('/', 1)[-1]}"
        digest = hashlib.md5()
        body = _get(s3, bucket, key)
        with open(local, "wb") as out:
            while chunk := body.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        _check_md5(entry, digest, f"s3://{bucket}/{key}")
        paths.append(str(local))
    return ExportFiles(f"s3://{bucket}/{summary_key.rsplit('/', 1)[0]}", summary, entries, paths)


def _exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def _get(s3: Any, bucket: str, key: str) -> Any:
    from botocore.exceptions import ClientError

    from ..aws import explain

    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise VerificationError(f"s3://{bucket}/{key} is missing: the export is incomplete.") from exc
        raise explain(exc, "s3:GetObject", f"s3://{bucket}/{key}") from exc


# -- manifests ----------------------------------------------------------------------------------------------
def _summary(summary: dict[str, Any], where: str) -> dict[str, Any]:
    kind = summary.get("exportType", "FULL_EXPORT")
    if kind != "FULL_EXPORT":
        raise InputError(
            f"{where} is an {kind}: compare-exports compares two FULL exports (an incremental export is "
            "already the list of changes: use impacted_source='incremental_export')."
        )
    fmt = summary.get("outputFormat", "DYNAMODB_JSON")
    if fmt != "DYNAMODB_JSON":
        raise InputError(f"{where} is in {fmt}: export again with ExportFormat=DYNAMODB_JSON.")
    return summary


def _entries(text: str, where: str) -> list[dict[str, Any]]:
    entries = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            entry["dataFileS3Key"]
        except (ValueError, KeyError, TypeError) as exc:
            raise VerificationError(
                f"{where} line {n} is not a manifest entry: the export is damaged."
            ) from exc
        entries.append(entry)
    return entries


def _check_md5(entry: dict[str, Any], digest: Any, where: str) -> None:
    expected = entry.get("md5Checksum")
    if expected and base64.b64encode(digest.digest()).decode() != expected:
        raise VerificationError(
            f"{where} does not match its manifest MD5: the copy is damaged; copy it again."
        )


def iter_lines(paths: list[str]) -> Iterator[str]:
    """Every non-empty line of local gzipped data files (for small exports and tests)."""
    import gzip

    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield line
