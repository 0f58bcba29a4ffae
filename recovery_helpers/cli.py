"""The `recovery` command: run the runbook headless, undo a patch, serve the sandbox, play the demo.

Errors the user can act on (:class:`RecoveryError`) are printed as one line ``error: <message>`` with exit
status 2; a step that fails in `recovery run` exits 1 after naming the step, the error and the executed
notebook.
"""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .errors import InputError, RecoveryError

#: `recovery sandbox` listens here unless --port says otherwise (0: any free port).
DEFAULT_SANDBOX_PORT = 4599
#: Names `recovery undo` takes from the parameters file / -p (the rest of an incident's file is ignored).
UNDO_PARAMETERS = ("incident_id", "table_name", "region", "endpoint_url", "runs_dir", "max_workers")


def _add_params_options(p: argparse.ArgumentParser, *, file_required: bool) -> None:
    p.add_argument(
        "-f",
        "--file",
        dest="params_file",
        required=file_required,
        metavar="PARAMS.yaml",
        help="the incident's parameters file (YAML mapping; see parameters/)",
    )
    p.add_argument(
        "-p",
        "--parameter",
        dest="overrides",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override one parameter; VALUE is read as YAML (false, 3, [a, b])",
    )


def _add_sandbox_parser(sub: argparse._SubParsersAction) -> None:
    """`recovery sandbox`: the embedded AWS and its speed settings."""
    sb = sub.add_parser(
        "sandbox",
        help="serve the embedded AWS on 127.0.0.1 until interrupted",
        description="Serve the embedded AWS on 127.0.0.1 and print how to point tools at it.",
    )
    sb.add_argument(
        "--port",
        type=int,
        default=DEFAULT_SANDBOX_PORT,
        help=f"port to listen on (default {DEFAULT_SANDBOX_PORT}; 0 picks a free one)",
    )
    sb.add_argument("--no-iam", action="store_true", help="do not enforce IAM (any credentials work)")
    sb.add_argument("--restore-seconds", type=float, help="seconds a restored table stays CREATING")
    sb.add_argument(
        "--pitr-lag-seconds", type=float, help="LatestRestorableDateTime = now - this (AWS: ~300)"
    )
    sb.add_argument(
        "--export-min-window-seconds", type=float, help="shortest incremental export window (AWS: 900)"
    )
    sb.add_argument("--latency-ms", type=float, help="added latency per request, in milliseconds")


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    """`recovery run`: the notebooks headless with papermill."""
    run = sub.add_parser(
        "run",
        help="execute the runbook notebooks with papermill into runs/<incident_id>/",
        description="Execute the runbook notebooks in order (prepare, contain, restore, diff, "
        "patch, lift) into runs/<incident_id>/; stop at the first failing step.",
    )
    _add_params_options(run, file_required=True)
    run.add_argument(
        "--steps",
        default=None,
        metavar="a,b,...",
        help="steps to run, comma separated (default: all, in runbook order)",
    )
    run.add_argument(
        "--notebooks",
        default=None,
        metavar="DIR",
        help="directory of the notebooks (default: $RECOVERY_NOTEBOOKS or the repository's notebooks/)",
    )


def _add_incident_parsers(sub: argparse._SubParsersAction) -> None:
    """`recovery undo`, `open`, `archive` and `demo`: the commands around one incident's run folder."""
    undo = sub.add_parser(
        "undo",
        help="put back the live items the incident's patch backed up",
        description="Put back the live items that the incident's patch backed up, where they "
        "are still what the patch wrote.",
    )
    undo.add_argument("--incident", required=True, metavar="ID", help="the incident id (runs/<ID>/)")
    _add_params_options(undo, file_required=False)

    op = sub.add_parser(
        "open",
        help="write a step's notebook, parameters injected and not executed, into runs/<incident_id>/",
        description="Write runs/<incident_id>/NN_step.ipynb with the incident's parameters injected (not "
        "executed) for an engineer to run in JupyterLab; HTML copies of notebooks already run by hand are "
        "made on the way. Last line: notebook: <absolute path>.",
    )
    op.add_argument("step", metavar="STEP", help="prepare, contain, restore, diff, patch or lift (or 01..06)")
    _add_params_options(op, file_required=True)
    op.add_argument("--notebooks", default=None, metavar="DIR", help="directory of the step notebooks")

    ar = sub.add_parser(
        "archive",
        help="HTML copies of the incident's notebooks run by hand (after 06_lift is saved)",
        description="Write the missing or stale HTML copies of the executed notebooks in runs/<incident_id>/.",
    )
    _add_params_options(ar, file_required=True)

    sub.add_parser(
        "demo",
        add_help=False,
        help="stage a demo incident in a sandbox and recover it end to end "
        "(recovery demo --help for its options)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of `recovery`."""
    parser = argparse.ArgumentParser(
        prog="recovery",
        description="Partial recovery of corrupted DynamoDB items from point-in-time recovery.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_sandbox_parser(sub)
    _add_run_parser(sub)
    _add_incident_parsers(sub)
    from .compare.command import add_parser as add_compare_exports

    add_compare_exports(sub)
    return parser


# -- commands ----------------------------------------------------------------------------------------------
def _check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """Refuse a busy port in one line (werkzeug would print its own advice and exit the process)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(
                    f"port {port} is in use: pass --port N (or --port 0 for any free port).", cause=exc
                ) from exc
            raise InputError(f"cannot listen on {host}:{port}: {exc}", cause=exc) from exc


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Start the sandbox, print the endpoint and the export lines, serve until SIGINT/SIGTERM."""
    from .sandbox import Sandbox, main_env_lines

    settings = {
        name: getattr(args, name)
        for name in ("restore_seconds", "pitr_lag_seconds", "export_min_window_seconds", "latency_ms")
        if getattr(args, name) is not None
    }
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _check_port_free(args.port)
        sb = Sandbox(port=args.port, enforce_iam=not args.no_iam, **settings)
        sb.start()
        try:
            print(f"endpoint_url={sb.endpoint_url}")
            print(main_env_lines(sb))
            sys.stdout.flush()
            print(
                "# sandbox running: paste the export lines into another shell; Ctrl-C stops it "
                "(and forgets everything).",
                file=sys.stderr,
                flush=True,
            )
            while not stop.wait(0.5):
                pass
        finally:
            sb.stop()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """`recovery run`: load the parameters, execute the steps, print a summary; 1 if a step failed."""
    from .runner import load_parameters, run_steps

    params = load_parameters(args.params_file, [tuple(o) for o in args.overrides])
    result = run_steps(params, args.steps, notebooks_dir=args.notebooks)
    print(result.summary())
    return result.exit_code


def _undo_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """table_name/region/endpoint_url/runs_dir from -f and -p; what is missing from the incident's state."""
    from .incident import FILE_NAME, Incident, validate_incident_id
    from .runner import load_parameters

    params = load_parameters(args.params_file, [tuple(o) for o in args.overrides])
    unknown = sorted(name for name, _ in args.overrides if name not in UNDO_PARAMETERS)
    if unknown:
        raise InputError(
            f"recovery undo does not take {', '.join(unknown)}: it takes "
            f"{', '.join(p for p in UNDO_PARAMETERS if p != 'incident_id')}."
        )
    incident_id = validate_incident_id(args.incident)
    if params.get("incident_id") not in (None, incident_id) and not any(
        n == "incident_id" for n, _ in args.overrides
    ):
        print(
            f"note: undoing incident {incident_id!r} (the parameters file names {params['incident_id']!r})",
            file=sys.stderr,
        )
    runs_dir = str(params.get("runs_dir") or "runs")
    from pathlib import Path

    if not (Path(runs_dir) / incident_id / FILE_NAME).is_file():
        raise InputError(
            f"no run folder for incident {incident_id!r} in {runs_dir}/ "
            f"(looked for {Path(runs_dir) / incident_id / FILE_NAME}): check --incident and runs_dir."
        )
    state = Incident(incident_id, runs_dir).data.get("state", {})
    return {
        "incident_id": incident_id,
        "table_name": params.get("table_name") or state.get("table_name"),
        "region": params.get("region") or state.get("region") or "us-east-1",
        "endpoint_url": params.get("endpoint_url"),
        "runs_dir": runs_dir,
        "max_workers": params.get("max_workers"),
    }


def cmd_undo(args: argparse.Namespace) -> int:
    """`recovery undo`: put back what the patch backed up; 1 if any item was in conflict or failed."""
    from .context import open_context

    p = _undo_parameters(args)
    ctx = open_context(p["incident_id"], p["table_name"], p["region"], p["endpoint_url"], p["runs_dir"])
    from .patch import undo  # lazily: the patch engine pulls in more than the other commands need

    kwargs = {"max_workers": int(p["max_workers"])} if p["max_workers"] else {}
    report = undo(ctx, **kwargs)
    print(report.summary())
    return 0 if report.ok else 1  # an item in conflict or failed was not put back


def cmd_open(args: argparse.Namespace) -> int:
    """`recovery open`: prepare one step's notebook in the run folder; last line ``notebook: <path>``."""
    from .open_step import open_from_files

    opened = open_from_files(args.step, args.params_file, [tuple(o) for o in args.overrides], args.notebooks)
    print("\n".join(opened.lines()))
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    """`recovery archive`: HTML copies of the notebooks executed by hand in the incident's run folder."""
    from pathlib import Path

    from .open_step import archive_hand_run
    from .paths import absolute
    from .runner import DEFAULT_INCIDENT_ID, DEFAULT_RUNS_DIR, load_parameters

    params = load_parameters(args.params_file, [tuple(o) for o in args.overrides])
    runs_dir = absolute(str(params.get("runs_dir") or DEFAULT_RUNS_DIR), Path.cwd())
    from .context import require_run_folder

    run_dir = require_run_folder(str(params.get("incident_id") or DEFAULT_INCIDENT_ID), runs_dir, "archive")
    written = archive_hand_run(run_dir)
    for html in written:
        print(f"html copy: {html}")
    print(f"archive: {run_dir} ({len(written)} html copies written)")
    return 0


def cmd_demo(argv: Sequence[str]) -> int:
    """`recovery demo`: the lead's demo takes its own options."""
    from . import demo

    return int(demo.main(list(argv)) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `recovery` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        if argv[:1] == ["demo"]:
            return cmd_demo(argv[1:])  # the demo parses its own options
        args = parser.parse_args(argv)
        if args.command == "sandbox":
            return cmd_sandbox(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "undo":
            return cmd_undo(args)
        if args.command == "open":
            return cmd_open(args)
        if args.command == "archive":
            return cmd_archive(args)
        if args.command == "compare-exports":
            from .compare.command import main as cmd_compare_exports

            return cmd_compare_exports(args)
    except RecoveryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")  # exits
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
