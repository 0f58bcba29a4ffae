"""`recovery demo --stage-only`: a sandbox holding the demo incident, for an engineer to rehearse by hand.

It starts the embedded AWS, stages the demo incident in it, and writes ONE parameters file with absolute
paths for the six notebooks. Every decision is left to the engineer: nothing is approved (no ``approve``, no
``approval_token``) and ``dry_run`` is true. It prints the sandbox's ``export AWS_...`` lines (its
administrator's keys are made up at start, so nothing outside could connect without them) and a last line
``parameters: <absolute path>``, then serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import InputError
from .incident import validate_incident_id

PARAMETERS_FILE = "parameters.yaml"
#: Parameters the headless demo sets that are the engineer's decisions in a rehearsal.
DECISIONS = {
    "approve": None,
    "approval_token": None,
    "dry_run": True,
    "apply": False,
    "delete_restored_table": False,
}


def rehearsal_parameters(demo_params: dict[str, Any]) -> dict[str, Any]:
    """The demo's parameters with every decision left to the engineer (safe defaults, nothing approved)."""
    params = {k: v for k, v in demo_params.items() if k not in ("approve", "approval_token")}
    params.update({k: v for k, v in DECISIONS.items() if v is not None})
    return params


def _header(path: Path, endpoint: str) -> str:
    return (
        "# A rehearsal of the demo incident, staged by `recovery demo --stage-only` in the sandbox at\n"
        f"# {endpoint} (it forgets everything when stopped). Paths are absolute. Nothing is approved and\n"
        "# dry_run is true: every decision is yours. Open each step with\n"
        f"#   recovery open prepare -f {path}\n"
        "# (then contain, restore, diff, patch, lift), run it in JupyterLab and save it.\n"
    )


def stage_only(
    incident_id: str = "demo",
    *,
    port: int = 0,
    runs_dir: str = "runs",
    orders_per_tenant: int = 400,
    out: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> int:
    """Stage the demo incident in a sandbox, write the parameters file, print how to connect, serve until stopped.

    ``stop`` (set by SIGINT/SIGTERM unless given) ends the serving; returns the exit status.
    """
    import yaml

    from .aws import Aws
    from .cli import _check_port_free
    from .demo import demo_parameters, stage
    from .sandbox import Sandbox, main_env_lines

    validate_incident_id(incident_id)
    run_dir = (Path(runs_dir).expanduser().resolve()) / incident_id
    if run_dir.exists() and any(run_dir.iterdir()):
        raise InputError(
            f"{run_dir} already holds a run: pass another --incident, or remove that folder first."
        )
    _check_port_free(port)
    stop = stop or threading.Event()
    handlers: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Sandbox(port=port, export_min_window_seconds=1) as sb:
            admin = Aws(region=sb.region, endpoint_url=sb.endpoint_url, session=_admin_session(sb))
            incident = stage(admin, run_dir / "demo", orders_per_tenant=orders_per_tenant, clock=sb.clock.now)
            params = rehearsal_parameters(
                demo_parameters(
                    incident,
                    incident_id=incident_id,
                    endpoint_url=sb.endpoint_url,
                    runs_dir=str(run_dir.parent),
                )
            )
            path = run_dir / PARAMETERS_FILE
            path.write_text(_header(path, sb.endpoint_url) + yaml.safe_dump(params, sort_keys=False))
            print(
                f"# demo incident staged: {incident.items} orders; deploy v2.3.1 corrupted "
                f"{sum(incident.corrupted.values())} of {', '.join(incident.affected_tenants)}. Paste the "
                "export lines into the shell that starts JupyterLab, then: recovery open prepare -f <the "
                "parameters file>. Ctrl-C stops the sandbox (and forgets everything).",
                file=sys.stderr,
                flush=True,
            )
            out(main_env_lines(sb))
            out(f"parameters: {path}")
            sys.stdout.flush()
            while not stop.wait(0.2):
                pass
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    return 0


def _admin_session(sb: Any) -> Any:
    """A boto3 session as the sandbox's administrator, whatever this process's environment holds."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=sb.admin_access_key_id,
        aws_secret_access_key=sb.admin_secret_access_key,
        region_name=sb.region,
    )
