"""Step 5: apply the reviewed, approved plan to the live table, verify it, and undo it if needed.

Every write is conditional on the live item still being the one that was reviewed, so a legitimate write made
since the review is reported as a conflict and never overwritten. Before each write the live item (or its
absence) goes to ``backup.jsonl``, on disk (fsync) before the write is sent; the outcome goes to
``journal.jsonl``. A run that dies at any moment is simply run again: finished keys are skipped, and a key
whose backup exists without an outcome is settled by reading it again. Memory stays flat: the plan and the
files are streamed, and only the set of finished key_ids is held (plus the few backups of a crashed run).

The package, from the top down:

* ``apply`` (apply_plan), ``verify``, ``undo``: the three public functions; ``ambiguous``
  (resolve_ambiguous): the engineer's decision on a key a crashed run could not settle;
* ``checks``: argument checks; ``plan_reading``: the plan and its approvals as Changes; ``state``: file names
  and what a journal says;
* ``run``: the one run loop patch and undo share (journal, backup, progress, timeline records);
* ``engine``: worker threads that read, compare, back up, write and journal (single and transactional paths);
* ``requests``: the conditional write requests; ``reports``: the reports returned.
"""

from .ambiguous import DECISIONS, AmbiguousDecisions, ambiguous_keys, decide_ambiguous, resolve_ambiguous
from .apply import apply_plan
from .engine import DEFAULT_WRITE_MODE, READ_BATCH, TRANSACT_BATCH, EngineTuning
from .reports import PatchReport, UndoReport, VerifyReport, difference
from .requests import WRITE_MODES
from .state import BACKUP_FILE, FINAL, JOURNAL_FILE, UNDO_FILE
from .undo import undo
from .verify import verify

__all__ = [
    "BACKUP_FILE",
    "DECISIONS",
    "DEFAULT_WRITE_MODE",
    "FINAL",
    "JOURNAL_FILE",
    "READ_BATCH",
    "TRANSACT_BATCH",
    "UNDO_FILE",
    "WRITE_MODES",
    "AmbiguousDecisions",
    "EngineTuning",
    "PatchReport",
    "UndoReport",
    "VerifyReport",
    "ambiguous_keys",
    "apply_plan",
    "decide_ambiguous",
    "difference",
    "resolve_ambiguous",
    "undo",
    "verify",
]
