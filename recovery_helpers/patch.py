"""Step 5: apply the reviewed, approved plan to the live table, verify it, and undo it if needed.

Every write is conditional on the live item still being the one that was reviewed, so a legitimate write made
since the review is reported as a conflict and never overwritten. Before each write the live item (or its
absence) goes to ``backup.jsonl``, on disk (fsync) before the write is sent; the outcome goes to
``journal.jsonl``. A run that dies at any moment is simply run again: finished keys are skipped, and a key
whose backup exists without an outcome is settled by reading it again. Memory stays flat: the plan and the
files are streamed, and only the set of finished key_ids is held (plus the few backups of a crashed run).

The public functions live here; the engine is in ``patch_engine`` (threads, reads, the single and the
transactional write paths), the requests in ``patch_writes`` and the reports in ``patch_reports``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from . import plan as planlib
from .aws import explain
from .context import Context
from .errors import ApprovalError, InputError
from .incident import utc_now
from .items import Item, KeySchema, from_json_safe, item_digest, iter_chunks, to_json_safe
from .journal import JsonlFile, iter_jsonl
from .patch_engine import READ_BATCH, Engine
from .patch_reports import REPORT_LIMIT, PatchReport, UndoReport, VerifyReport, difference
from .patch_writes import TRANSACT_MAX_ITEMS, WRITE_MODES, Change, condition_summary, pdigest, project
from .progress import progress_bar
from .ratelimit import RateLimiter
from .scan import BATCH_GET_MAX, batch_get

BACKUP_FILE = "backup.jsonl"
JOURNAL_FILE = "journal.jsonl"
UNDO_FILE = "undo.jsonl"
#: Journal statuses after which a key is never touched again by the same patch. ("skipped", for an entry that
#: was not approved, is not final: approving it later and running again patches it.)
FINAL = frozenset({"patched", "undone", "unchanged", "conflict"})
#: Keys per TransactWriteItems in the transactional write modes (DynamoDB allows up to 100). 50 measured 10-15 %
#: faster than 25 (fewer calls, less fixed cost per call) and cancels half as many items as 100 would when
#: one item conflicts (bench/README.md).
TRANSACT_BATCH = 50
#: The write mode apply_plan and undo use unless told otherwise (chosen by bench/patch.py; see bench/README.md).
DEFAULT_WRITE_MODE = "auto"


# -- checks before anything is written ----------------------------------------------------------------------
def _validate_attributes(attributes: Any, schema: KeySchema) -> tuple[str, ...] | None:
    if attributes is None:
        return None
    if isinstance(attributes, str) or not isinstance(attributes, (list, tuple)):
        raise InputError(
            f"attributes must be None (whole items) or a list of attribute names, got "
            f'{attributes!r}; e.g. attributes=["status", "price"].'
        )
    if not attributes:
        raise InputError(
            "attributes=[] names nothing to restore: use None for whole items, or list the names."
        )
    names = []
    for a in attributes:
        if not isinstance(a, str) or not a:
            raise InputError(f"attributes must be non-empty strings (top-level attribute names), got {a!r}.")
        if a in schema.names:
            raise InputError(
                f"attributes may not include the key attribute {a!r} (the table's key is "
                f"{schema.describe()}); a key cannot be changed in place."
            )
        names.append(a)
    return tuple(dict.fromkeys(names))


def _validate_numbers(max_workers: Any, segments: Any) -> tuple[int, int] | None:
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or not 1 <= max_workers <= 256:
        raise InputError(f"max_workers must be an integer between 1 and 256, got {max_workers!r}.")
    if segments is None:
        return None
    if (
        not isinstance(segments, (tuple, list))
        or len(segments) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in segments)
        or not 0 <= segments[0] < segments[1]
    ):
        raise InputError(
            f"segments must be (index, total) with 0 <= index < total, e.g. (0, 4) for the first "
            f"of four processes sharing the plan; got {segments!r}."
        )
    return int(segments[0]), int(segments[1])


def _validate_write_mode(write_mode: Any, transact_batch_size: Any, limiter: RateLimiter) -> str:
    """The write path to use: "single" or "transact" as asked; "auto" without a rate limit is "auto"."""
    if write_mode not in WRITE_MODES:
        raise InputError(
            f"write_mode must be one of {', '.join(repr(m) for m in WRITE_MODES)}, got {write_mode!r}: "
            '"single" writes one item per call, "transact" groups them in TransactWriteItems, "auto" decides.'
        )
    if (
        isinstance(transact_batch_size, bool)
        or not isinstance(transact_batch_size, int)
        or not 1 <= transact_batch_size <= TRANSACT_MAX_ITEMS
    ):
        raise InputError(
            f"transact_batch_size must be an integer between 1 and {TRANSACT_MAX_ITEMS} (items per "
            f"TransactWriteItems), got {transact_batch_size!r}."
        )
    if write_mode == "auto" and limiter.rate is not None:
        # with a rate limit the limit sets the speed, not the round trips: write the way that costs half the
        # capacity and catches an attribute added between read and write
        return "single"
    return write_mode


def _in_segment(key_id: str, segments: tuple[int, int] | None) -> bool:
    return segments is None or planlib.segment_of(key_id, segments[1]) == segments[0]


def _check_plan(ctx: Context) -> tuple[str, dict[str, Any], planlib.Approvals]:
    """The plan, its approvals and their agreement; ApprovalError/InputError before anything is written."""
    incident = ctx.incident
    meta = planlib.load_plan_meta(incident)  # InputError "run 04_diff first" when missing
    if not (incident.path / planlib.PLAN_FILE).exists():
        raise InputError(f"incident {incident.incident_id!r} has no plan.jsonl: run 04_diff first.")
    digest = meta["digest"]
    if meta.get("table_name") not in (None, ctx.table_name):
        raise InputError(
            f"the plan is for table {meta['table_name']!r}, not {ctx.table_name!r}: check table_name."
        )
    path = incident.path / planlib.APPROVALS_FILE
    if path.exists():
        recorded = json.loads(path.read_text(encoding="utf-8")).get("digest")
        if recorded != digest:
            raise ApprovalError(
                f"the approvals are for plan {str(recorded)[:12]}, but the current plan is {digest[:12]}: "
                "the plan "
                "changed after it was approved. Review it again in 04_diff and re-approve."
            )
    approvals = planlib.load_approvals(incident)
    return digest, meta, approvals


def _plan_changes(
    ctx: Context,
    approvals: planlib.Approvals,
    attributes: tuple[str, ...] | None,
    segments: tuple[int, int] | None,
    counts: Counter[str] | None = None,
    checked: tuple[int, int, int] | None = None,
) -> Iterator[tuple[planlib.PlanEntry, Change | None]]:
    """Stream (entry, change) for the plan entries of this segment; change is None when nothing is to do.

    Each approved entry's items are checked against its digests (an edited plan is refused), unless
    ``checked`` is the plan file's stamp (see _plan_stamp) when an earlier pass checked them all: then the
    file must still be that one, and the digests recorded in it are used as they are.
    """
    if checked is not None and _plan_stamp(ctx) != checked:
        raise InputError(
            "plan.jsonl changed while the patch was starting: nothing was written. Re-run 04_diff and "
            "approve again if the plan was rebuilt, else run the patch again."
        )
    for entry in _iter_entries(ctx, as_bytes=checked is not None):
        if not _in_segment(entry.key_id, segments):
            continue
        if entry.action == "none":
            if counts is not None:
                counts["no_change"] += 1
            yield entry, None
            continue
        if not approvals.is_approved(entry):
            if counts is not None:
                counts["not_approved"] += 1
            yield entry, None
            continue
        if checked is not None:
            live_digest, restored_digest = entry.live_digest, entry.restored_digest
        else:
            live_digest, restored_digest = item_digest(entry.live), item_digest(entry.restored)
        if live_digest != entry.live_digest or restored_digest != entry.restored_digest:
            raise InputError(
                f"plan.jsonl entry {entry.key_id} does not match its own digests: the file was edited "
                "after the "
                "review. Re-run 04_diff and approve again."
            )
        if counts is not None:
            counts["approved"] += 1
        target = entry.restored if entry.action == "put" else None
        by_attribute = attributes is not None and entry.live is not None and target is not None
        attrs = attributes if by_attribute else None
        yield (
            entry,
            Change(
                key_id=entry.key_id,
                key=entry.key,
                target=target,
                attributes=attrs,
                expected_digest=live_digest if attrs is None else pdigest(entry.live, attrs),
                target_digest=(restored_digest if target is not None else item_digest(None))
                if attrs is None
                else pdigest(target, attrs),
                action="revert-attributes" if by_attribute else entry.action,
                reviewed=project(entry.live, attrs),
                classification=entry.classification,
            ),
        )


def _iter_entries(ctx: Context, *, as_bytes: bool) -> Iterator[planlib.PlanEntry]:
    """The plan's entries, as plan.iter_plan gives them, at a third of the cost.

    Binary values are base64 text in plan.jsonl; plan.iter_plan turns them into bytes by walking every item.
    Counting and checking digests need no bytes (an item's digest is the same in both forms), so with
    ``as_bytes=False`` nothing is converted; with ``as_bytes=True`` only lines that hold a binary value are.
    """
    path = ctx.incident.path / planlib.PLAN_FILE
    if not path.exists():
        yield from planlib.iter_plan(ctx.incident)  # its InputError: run 04_diff first
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            obj = json.loads(line)
            if as_bytes and ('"B"' in line or '"BS"' in line):
                yield planlib.PlanEntry.from_json(obj)
                continue
            try:
                entry = planlib.PlanEntry(**obj)
            except TypeError:  # a field this version does not know: the plan module's own reader
                entry = planlib.PlanEntry.from_json(obj)
            yield entry


def _plan_stamp(ctx: Context) -> tuple[int, int, int]:
    """Size, modification time and inode of plan.jsonl: a pass that checked it can vouch for the next one."""
    st = (ctx.incident.path / planlib.PLAN_FILE).stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def _journal_state(path: Any, run_id: str) -> tuple[set[str], Counter[str], set[str]]:
    """Key_ids with a final outcome in this run's journal, the count of each outcome, the skipped key_ids."""
    final: set[str] = set()
    skipped: set[str] = set()
    counts: Counter[str] = Counter()
    for line in iter_jsonl(path):
        if line.get("patch_id") != run_id:
            continue
        if line.get("status") in FINAL and line["key_id"] not in final:
            final.add(line["key_id"])
            counts[line["status"]] += 1
        elif line.get("status") == "skipped":
            skipped.add(line["key_id"])
    return final, counts, skipped


def _pending_backups(path: Any, run_id: str, final: set[str]) -> dict[str, Item | None]:
    """Backups of this run without a final outcome: the keys a stopped run may or may not have written."""
    out: dict[str, Item | None] = {}
    for line in iter_jsonl(path):
        if line.get("patch_id") == run_id and line.get("source") == "read" and line["key_id"] not in final:
            out.setdefault(line["key_id"], from_json_safe(line["item"]))
    return out


def _key_schema(ctx: Context) -> KeySchema:
    try:
        return KeySchema.of_table(ctx.aws.dynamodb, ctx.table_name)
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeTable", ctx.table_name) from exc


# -- apply --------------------------------------------------------------------------------------------------
def apply_plan(
    ctx: Context,
    *,
    dry_run: bool = True,
    max_workers: int = 8,
    max_write_rate: float | None = None,
    attributes: Sequence[str] | None = None,
    require_distinct_approver: bool = False,
    segments: tuple[int, int] | None = None,
    progress: bool = True,
    read_batch_size: int = READ_BATCH,
    limiter: RateLimiter | None = None,
    write_mode: str = DEFAULT_WRITE_MODE,
    transact_batch_size: int = TRANSACT_BATCH,
) -> PatchReport:
    """Apply the approved entries of the reviewed plan to the live table (``dry_run=True``: only list them).

    ``attributes``: None restores whole items; a list reverts only those attributes of updated items
    (items the incident deleted are put back whole, items it created are deleted). ``segments=(i, n)``: only
    the keys of segment i of n, so n processes can share one plan. ``read_batch_size``: keys per consistent
    BatchGetItem (1: GetItem per key instead). ``limiter``: a RateLimiter to share (else one for
    max_write_rate). ``write_mode``: ``"single"`` (one conditional write per item), ``"transact"``
    (TransactWriteItems of ``transact_batch_size`` items, 2 WCU per item on AWS) or ``"auto"`` (transactions
    without max_write_rate, single writes with it; see the README, "Step 05").
    """
    if not isinstance(dry_run, bool):
        raise InputError(f"dry_run must be True or False, got {dry_run!r}")
    seg = _validate_numbers(max_workers, segments)
    limiter = limiter or RateLimiter(max_write_rate)  # validates max_write_rate
    mode = _validate_write_mode(write_mode, transact_batch_size, limiter)
    if not isinstance(read_batch_size, int) or not 1 <= read_batch_size <= BATCH_GET_MAX:
        raise InputError(f"read_batch_size must be 1..{BATCH_GET_MAX}, got {read_batch_size!r}")
    incident = ctx.incident
    incident.reload()  # another process (a killed run, a parallel segment) may have moved the state on
    digest, _meta, approvals = _check_plan(ctx)
    schema = _key_schema(ctx)
    attrs = _validate_attributes(attributes, schema)
    executor = ctx.who
    if require_distinct_approver and (approvals.approved_by is None or approvals.approved_by == executor):
        raise ApprovalError(
            f"require_distinct_approver=True: the plan was approved by {approvals.approved_by or 'nobody'} "
            "and "
            f"would be executed by {executor}. Have another person approve it in 04_diff, or run the "
            "patch as "
            "another identity."
        )

    # which patch run: resume the one in progress for this plan, else start a new one
    status = incident.get("patch_status")
    run_id = incident.get("patch_id")
    resuming = bool(run_id) and incident.get("patch_plan_digest") == digest and status not in ("undone", None)
    if status == "undoing":
        raise InputError(
            f"an undo of patch {run_id} is unfinished: run undo again until it completes, then "
            "re-run 04_diff before patching again."
        )
    if resuming:
        previous = incident.get("patch_attributes")
        if (tuple(previous) if previous else None) != attrs:
            raise InputError(
                f"patch {run_id} of this plan was started with attributes={previous!r}; resume it with the "
                "same "
                "attributes, or undo it first."
            )
    if not resuming:
        run_id = f"{digest[:12]}-{utc_now().replace(':', '').replace('-', '')}"
    final, _, noted = (
        _journal_state(incident.path / JOURNAL_FILE, run_id) if resuming else (set(), None, set())
    )

    counts: Counter[str] = Counter()
    report = PatchReport(
        incident_id=incident.incident_id,
        table_name=ctx.table_name,
        plan_digest=digest,
        patch_id=run_id,
        dry_run=dry_run,
        attributes=list(attrs) if attrs else None,
        executor=executor,
        approved_by=approvals.approved_by,
        schema=schema,
        write_mode=mode,
    )

    # pass 1: count and check every entry (nothing is written if the plan is unusable)
    stamp = _plan_stamp(ctx)
    for _entry, change in _plan_changes(ctx, approvals, attrs, seg, counts):
        if change is not None and change.key_id in final:
            counts["already_done"] += 1
        elif change is not None:
            counts["to_do"] += 1
            counts[f"would:{change.action}"] += 1
    report.approved, report.not_approved = counts["approved"], counts["not_approved"]
    report.no_change, report.to_do = counts["no_change"], counts["to_do"]
    report.already_done = counts["already_done"]
    report.would_write = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("would:")}
    if counts["approved"] == 0:
        raise ApprovalError(
            f"nothing in plan {digest[:12]} is approved ({counts['not_approved']} proposed changes await a "
            "decision): "
            "approve in 04_diff (the buttons, approve=True, or approval_token=<digest>)."
        )

    if dry_run:
        rows = []
        for entry, change in _plan_changes(ctx, approvals, attrs, seg, checked=stamp):
            if change is None or change.key_id in final:
                continue
            rows.append(
                {
                    **schema.key_to_plain(change.key),
                    "action": change.action,
                    "classification": change.classification,
                    "tenant": entry.tenant,
                    "condition": condition_summary(change),
                }
            )
        report.writes = pd.DataFrame(
            rows, columns=[*schema.names, "action", "classification", "tenant", "condition"]
        )
        ctx.record(
            "patch dry run",
            plan_digest=digest,
            would_write=report.would_write,
            not_approved=report.not_approved,
            attributes=report.attributes,
        )
        return report

    incident.update(
        patch_id=run_id,
        patch_plan_digest=digest,
        patch_status="running",
        patch_attributes=list(attrs) if attrs else None,
    )
    ctx.record(
        "patch started",
        patch_id=run_id,
        plan_digest=digest,
        executor=executor,
        approved_by=approvals.approved_by,
        approved=report.approved,
        to_do=report.to_do,
        already_done=report.already_done,
        attributes=report.attributes,
        max_workers=max_workers,
        max_write_rate=max_write_rate,
        write_mode=mode,
        transact_batch_size=transact_batch_size if mode != "single" else None,
        segments=list(seg) if seg else None,
        resumed=resuming,
    )
    pending = _pending_backups(incident.path / BACKUP_FILE, run_id, final) if resuming else {}
    run_fields = {"patch_id": run_id, "plan_digest": digest}
    started = time.monotonic()
    bar = progress_bar(
        total=report.to_do, desc="patch", unit="item", disable=not progress, done="patched {n}/{total} items"
    )
    with (
        JsonlFile(incident.path / JOURNAL_FILE) as journal,
        JsonlFile(incident.path / BACKUP_FILE, durable=True) as backup,
    ):
        engine = Engine(
            ctx,
            schema,
            run_fields=run_fields,
            journal=journal,
            backup=backup,
            limiter=limiter,
            max_workers=max_workers,
            read_batch_size=read_batch_size,
            bar=bar,
            verb="patched",
            write_mode=mode,
            transact_batch_size=transact_batch_size,
            token_scope=f"patch|{run_id}|{digest}",
        )
        skipped: list[dict[str, Any]] = []

        def changes() -> Iterator[Change]:
            for entry, change in _plan_changes(ctx, approvals, attrs, seg, checked=stamp):
                if change is None:
                    if entry.key_id not in noted:  # journal each skipped entry once per patch run
                        skipped.append(
                            {
                                **run_fields,
                                "key_id": entry.key_id,
                                "key": to_json_safe(entry.key),
                                "status": "skipped",
                                "reason": "no change needed" if entry.action == "none" else "not approved",
                                "time": utc_now(),
                            }
                        )
                        if len(skipped) >= 1000:
                            journal.append_many(skipped)
                            skipped.clear()
                    continue
                if change.key_id in final:
                    continue
                if change.key_id in pending:
                    change.pending = pending.pop(change.key_id)
                yield change

        try:
            engine.run(changes())
            journal.append_many(skipped)
        except BaseException as exc:
            ctx.record(
                "patch interrupted",
                result="stopped",
                patch_id=run_id,
                executor=executor,
                error=f"{type(exc).__name__}: {exc}",
                **{k: engine.counts[k] for k in ("patched", "unchanged", "conflict", "failed")},
            )
            raise
        finally:
            bar.close()
    report.elapsed_seconds = time.monotonic() - started
    c = engine.counts
    report.patched, report.unchanged, report.conflicts, report.failed = (
        c["patched"],
        c["unchanged"],
        c["conflict"],
        c["failed"],
    )
    report.throttled, report.retried_calls, report.raced = c["throttled"], c["retried_calls"], c["raced"]
    report.write_capacity_units = engine.write_units
    report.writes_by_path = engine.writes_by_path()
    report.transactions = c["transactions"]
    report.transactions_cancelled = c["transactions_cancelled"]
    report.conflict_items, report.failures = engine.conflicts, engine.failures
    report.rate = limiter.stats
    result = (
        "ok"
        if engine.fatal is None and not report.failed and not report.conflicts
        else ("stopped" if engine.fatal is not None else "conflicts" if not report.failed else "failed")
    )
    incident.update(patch_status="finished" if engine.fatal is None and not report.failed else "running")
    ctx.record(
        "patch finished",
        result=result,
        patch_id=run_id,
        executor=executor,
        patched=report.patched,
        unchanged=report.unchanged,
        conflicts=report.conflicts,
        failed=report.failed,
        not_approved=report.not_approved,
        already_done=report.already_done,
        raced=report.raced,
        throttled=report.throttled,
        write_capacity_units=report.write_capacity_units,
        write_mode=mode,
        written_by=report.writes_by_path,
        transactions=report.transactions,
        transactions_cancelled=report.transactions_cancelled,
        seconds=round(report.elapsed_seconds, 3),
        error=str(engine.fatal) if engine.fatal else None,
    )
    if engine.fatal is not None:
        raise engine.fatal
    return report


# -- verify -------------------------------------------------------------------------------------------------
def _current_patch(ctx: Context) -> str:
    ctx.incident.reload()
    run_id = ctx.incident.get("patch_id")
    if not run_id:
        raise InputError(
            f"incident {ctx.incident.incident_id!r} has no patch yet: run 05_patch with dry_run=False first."
        )
    return run_id


def verify(ctx: Context, *, max_workers: int = 8) -> VerifyReport:
    """Read every item the patch wrote again and check it equals its target; list conflicts and leftovers."""
    _validate_numbers(max_workers, None)
    incident = ctx.incident
    run_id = _current_patch(ctx)
    schema = _key_schema(ctx)
    report = VerifyReport(
        incident_id=incident.incident_id, table_name=ctx.table_name, patch_id=run_id, schema=schema
    )
    final: set[str] = set()
    lock = threading.Lock()

    def patched_lines() -> Iterator[dict[str, Any]]:
        for line in iter_jsonl(incident.path / JOURNAL_FILE):
            if line.get("patch_id") != run_id or line.get("status") not in FINAL or line["key_id"] in final:
                continue
            final.add(line["key_id"])
            if line["status"] == "conflict":
                report.conflicts += 1
                if len(report.conflict_items) < REPORT_LIMIT:
                    report.conflict_items.append(line)
            elif line["status"] in ("patched", "unchanged"):
                yield line

    def check(lines: list[dict[str, Any]]) -> None:
        keys = [from_json_safe(line["key"]) for line in lines]
        found = batch_get(ctx.aws.dynamodb, ctx.table_name, keys, schema, consistent_read=True)
        for line in lines:
            live = found.get(line["key_id"])
            ok = (
                pdigest(live, line.get("attributes")) == line["target_digest"]
                if "target_digest" in line
                else True
            )
            with lock:
                report.checked += 1
                if ok:
                    report.matching += 1
                elif len(report.mismatched) < REPORT_LIMIT:
                    report.mismatched.append(
                        {
                            **line,
                            "status": "mismatch",
                            "found": to_json_safe(live),
                            "reason": "differs from the patch's target",
                        }
                    )

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="verify") as pool:
        futures = []
        for chunk in iter_chunks(patched_lines(), BATCH_GET_MAX):
            futures.append(pool.submit(check, chunk))
            if len(futures) >= max_workers * 2:
                futures.pop(0).result()
        for f in futures:
            f.result()
    # failures still open, and approved work never attempted
    failed_ids: set[str] = set()
    for line in iter_jsonl(incident.path / JOURNAL_FILE):
        if line.get("patch_id") == run_id and line.get("status") == "failed" and line["key_id"] not in final:
            if line["key_id"] not in failed_ids and len(report.failures) < REPORT_LIMIT:
                report.failures.append(line)
            failed_ids.add(line["key_id"])
    report.failed = len(failed_ids)
    digest = incident.get("patch_plan_digest")
    if digest == planlib.load_plan_meta(incident)["digest"]:
        approvals = planlib.load_approvals(incident)
        attrs = incident.get("patch_attributes")
        for _, change in _plan_changes(ctx, approvals, tuple(attrs) if attrs else None, None):
            if change is not None and change.key_id not in final and change.key_id not in failed_ids:
                report.pending += 1
    ctx.record(
        "verify patch",
        result="ok" if report.ok else "problems",
        patch_id=run_id,
        checked=report.checked,
        matching=report.matching,
        mismatched=len(report.mismatched),
        conflicts=report.conflicts,
        failed=report.failed,
        pending=report.pending,
    )
    return report


# -- undo ---------------------------------------------------------------------------------------------------
def undo(
    ctx: Context,
    *,
    max_workers: int = 8,
    progress: bool = True,
    limiter: RateLimiter | None = None,
    write_mode: str = DEFAULT_WRITE_MODE,
    transact_batch_size: int = TRANSACT_BATCH,
) -> UndoReport:
    """Put back every item the patch changed, where it is still exactly what the patch wrote.

    Anything written since the patch is a conflict: reported, never overwritten. Journaled in ``undo.jsonl``
    and resumable like the patch itself. ``write_mode`` as for apply_plan.
    """
    _validate_numbers(max_workers, None)
    limiter = limiter or RateLimiter(None)
    mode = _validate_write_mode(write_mode, transact_batch_size, limiter)
    incident = ctx.incident
    run_id = _current_patch(ctx)
    schema = _key_schema(ctx)
    executor = ctx.who
    undo_path = incident.path / UNDO_FILE
    final, done_counts, _ = _journal_state(undo_path, run_id)
    report = UndoReport(
        incident_id=incident.incident_id,
        table_name=ctx.table_name,
        patch_id=run_id,
        executor=executor,
        already_done=sum(done_counts.values()),
        schema=schema,
        write_mode=mode,
    )

    def patched() -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        for line in iter_jsonl(incident.path / JOURNAL_FILE):
            if (
                line.get("patch_id") == run_id
                and line.get("status") == "patched"
                and line["key_id"] not in seen
            ):
                seen.add(line["key_id"])
                yield line

    for line in patched():
        if line["key_id"] not in final:
            report.to_undo += 1
    if report.to_undo == 0 and report.already_done == 0:
        raise InputError(
            f"patch {run_id} of incident {incident.incident_id!r} changed no item: nothing to undo."
        )

    def changes() -> Iterator[Change]:
        for line in patched():
            if line["key_id"] in final:
                continue
            before = from_json_safe(line["before"])
            yield Change(
                key_id=line["key_id"],
                key=from_json_safe(line["key"]),
                expected_digest=line["after_digest"],
                target=before,
                target_digest=item_digest(before),
                attributes=None,
                action="put" if before is not None else "delete",
                reviewed=None,
                classification="undo",
            )

    incident.update(patch_status="undoing")
    ctx.record(
        "undo started",
        patch_id=run_id,
        executor=executor,
        to_undo=report.to_undo,
        already_done=report.already_done,
    )
    started = time.monotonic()
    bar = progress_bar(
        total=report.to_undo, desc="undo", unit="item", disable=not progress, done="undid {n}/{total} items"
    )
    with JsonlFile(undo_path) as journal:
        engine = Engine(
            ctx,
            schema,
            run_fields={"patch_id": run_id},
            journal=journal,
            backup=None,
            limiter=limiter,
            max_workers=max_workers,
            read_batch_size=READ_BATCH,
            bar=bar,
            verb="undone",
            write_mode=mode,
            transact_batch_size=transact_batch_size,
            token_scope=f"undo|{run_id}",
        )
        try:
            engine.run(changes())
        except BaseException as exc:
            ctx.record(
                "undo interrupted",
                result="stopped",
                patch_id=run_id,
                executor=executor,
                error=f"{type(exc).__name__}: {exc}",
                undone=engine.counts["undone"],
            )
            raise
        finally:
            bar.close()
    c = engine.counts
    report.undone, report.unchanged, report.conflicts, report.failed = (
        c["undone"],
        c["unchanged"],
        c["conflict"],
        c["failed"],
    )
    report.conflict_items, report.failures = engine.conflicts, engine.failures
    report.write_capacity_units = engine.write_units
    report.writes_by_path = engine.writes_by_path()
    report.transactions = c["transactions"]
    report.transactions_cancelled = c["transactions_cancelled"]
    report.elapsed_seconds = time.monotonic() - started
    complete = engine.fatal is None and report.failed == 0
    incident.update(patch_status="undone" if complete else "undoing")
    ctx.record(
        "undo finished",
        result="ok" if report.ok and complete else "problems",
        patch_id=run_id,
        executor=executor,
        undone=report.undone,
        unchanged=report.unchanged,
        conflicts=report.conflicts,
        failed=report.failed,
        write_mode=mode,
        transactions=report.transactions,
        write_capacity_units=report.write_capacity_units,
        seconds=round(report.elapsed_seconds, 3),
        error=str(engine.fatal) if engine.fatal else None,
    )
    if engine.fatal is not None:
        raise engine.fatal
    return report


__all__ = [
    "BACKUP_FILE",
    "DEFAULT_WRITE_MODE",
    "JOURNAL_FILE",
    "READ_BATCH",
    "TRANSACT_BATCH",
    "UNDO_FILE",
    "WRITE_MODES",
    "PatchReport",
    "UndoReport",
    "VerifyReport",
    "apply_plan",
    "difference",
    "undo",
    "verify",
]
