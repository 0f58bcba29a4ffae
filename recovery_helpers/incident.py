"""The run folder ``runs/<incident_id>/`` and its ``incident.json``: state shared by the steps, and a timeline.

The timeline is append-only: every action that changed something in AWS (or decided something, like an
approval) gets one entry with its UTC time, who did it (the caller ARN), what, and the result.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from .errors import InputError

INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FILE_NAME = "incident.json"
#: Taken (flock) around every read-modify-write of incident.json, so that several processes patching segments
#: of one run folder never lose each other's timeline records.
LOCK_NAME = ".incident.lock"


def utc_now() -> str:
    """Now, as ISO 8601 UTC with a Z and millisecond precision."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def os_user() -> str:
    """The operating-system user running this process (an extra field of every timeline entry)."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return os.environ.get("USER", "unknown")


def validate_incident_id(incident_id: str) -> str:
    """Refuse ids that are empty, too long, or could escape the runs folder (``..``, ``/``)."""
    if not isinstance(incident_id, str) or not INCIDENT_ID.match(incident_id) or ".." in incident_id:
        raise InputError(
            f"incident_id {incident_id!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (it names the folder runs/<incident_id>/)."
        )
    return incident_id


class _ProcessLock:
    """A re-entrant lock across the threads of this process and (with flock) the processes of this machine."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> _ProcessLock:
        self._thread_lock.acquire()
        self._depth += 1
        if self._depth == 1:
            try:
                import fcntl

                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except ImportError:  # no flock (Windows): threads of one process are still serialised
                pass
        return self

    def __exit__(self, *_: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
        self._thread_lock.release()


class Incident:
    """One incident's run folder. Cheap to open from every notebook; writes are atomic and thread-safe."""

    def __init__(self, incident_id: str, runs_dir: str | os.PathLike[str] = "runs") -> None:
        self.incident_id = validate_incident_id(incident_id)
        self.runs_dir = Path(runs_dir)
        self.path = self.runs_dir / incident_id
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _ProcessLock(self.path / LOCK_NAME)
        self._file = self.path / FILE_NAME
        #: Callables given the data just before each save (e.g. to merge AWS call counts).
        self.before_save: list[Any] = []
        if self._file.exists():
            self.data: dict[str, Any] = json.loads(self._file.read_text())
        else:
            self.data = {
                "incident_id": incident_id,
                "opened": utc_now(),
                "closed": None,
                "state": {},
                "timeline": [],
            }
            self._save()

    def reload(self) -> None:
        with self._lock:
            if self._file.exists():
                self.data = json.loads(self._file.read_text())

    # -- state -------------------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        return self.data["state"].get(key, default)

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self.reload()
            self.data["state"][key] = value
            self._save()

    def update(self, **values: Any) -> None:
        with self._lock:
            self.reload()
            self.data["state"].update(values)
            self._save()

    def require(self, key: str, step: str) -> Any:
        """A state value an earlier step must have set; a clear error naming that step otherwise."""
        value = self.get(key)
        if value is None:
            raise InputError(
                f"incident {self.incident_id!r} has no {key!r} yet: run the {step} step first "
                f"(state lives in {self._file})."
            )
        return value

    # -- timeline ----------------------------------------------------------------------------------------
    def record(self, action: str, *, who: str, result: str = "ok", **details: Any) -> dict[str, Any]:
        """Append one event to the timeline and save."""
        event = {"time": utc_now(), "who": who, "action": action, "result": result, **details}
        event.setdefault("os_user", os_user())
        with self._lock:
            self.reload()
            self.data["timeline"].append(event)
            self._save()
        return event

    @property
    def timeline(self) -> list[dict[str, Any]]:
        return list(self.data["timeline"])

    def close(self, summary: dict[str, Any], *, who: str) -> None:
        with self._lock:
            self.reload()
            self.data["closed"] = utc_now()
            self.data["summary"] = summary
            self.data["timeline"].append(
                {
                    "time": self.data["closed"],
                    "who": who,
                    "action": "close incident",
                    "result": "ok",
                    "os_user": os_user(),
                }
            )
            self._save()

    # -- files -------------------------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        """A path inside the run folder (refusing names that would leave it)."""
        p = (self.path / name).resolve()
        if self.path.resolve() not in p.parents:
            raise InputError(f"{name!r} is outside the run folder {self.path}")
        return p

    def touch(self) -> None:
        """Save now (re-reading first), letting ``before_save`` hooks add what they hold."""
        with self._lock:
            self.reload()
            self._save()

    def _save(self) -> None:
        for hook in self.before_save:
            hook(self.data)
        tmp = self._file.with_suffix(f".json.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str, sort_keys=False))
        os.replace(tmp, self._file)
