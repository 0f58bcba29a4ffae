"""``recovery demo``: a sandbox, the staged incident, the six notebooks headless, and the check of the outcome."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..aws import Aws
from ..patch.shards import journal_status_counts
from .check import check
from .stage import CORRUPTED_ATTRIBUTES, TENANT_ATTRIBUTE, DemoIncident, stage


def demo_parameters(
    incident: DemoIncident,
    *,
    incident_id: str,
    endpoint_url: str | None,
    runs_dir: str,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """The one parameters mapping for all six notebooks (what a parameters YAML file would hold)."""
    return {
        "incident_id": incident_id,
        "table_name": incident.table_name,
        "region": region,
        "endpoint_url": endpoint_url,
        "runs_dir": runs_dir,
        "app_role_name": incident.resources.app_role,
        "read_only_parameter": incident.resources.read_only_parameter,
        "deny_policy_name": incident.resources.deny_policy,
        "apply": True,
        # the change log 01_prepare checks (the demo app ships it to CloudWatch Logs): a good run is all green
        "log_group": incident.resources.log_group,
        "tenants": incident.affected_tenants,
        "restore_time": incident.restore_time,
        "source": "pitr",
        "restore_indexes": False,
        "impacted_source": "log_file",
        "log_file": incident.log_file,
        "incident_start": incident.incident_start,
        "incident_end": incident.incident_end,
        "tenant_attribute": TENANT_ATTRIBUTE,
        "approve": True,
        "dry_run": False,
        "max_workers": 8,
        "attributes": CORRUPTED_ATTRIBUTES,
        "delete_restored_table": True,
    }


def _plan_counts(run_dir: Path) -> dict[str, int]:
    meta = run_dir / "plan.json"
    if not meta.exists():
        return {}
    return json.loads(meta.read_text()).get("counts", {})


def _parser() -> argparse.ArgumentParser:
    """The options of `recovery demo`."""
    parser = argparse.ArgumentParser(
        prog="recovery demo", description="Rehearse a partial recovery end to end."
    )
    parser.add_argument("--incident-id", "--incident", dest="incident_id", default="demo")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--orders-per-tenant", type=int, default=400)
    parser.add_argument("--keep-sandbox", action="store_true", help="keep serving the sandbox after the run")
    parser.add_argument("--steps", default=None, help="comma-separated subset of steps (default: all six)")
    parser.add_argument(
        "--stage-only",
        action="store_true",
        help="stage the incident, write a parameters file, print the export lines, serve until Ctrl-C: "
        "the engineer runs the six steps by hand (recovery open STEP -f PARAMS.yaml)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="sandbox port with --stage-only (default: any free)"
    )
    return parser


def _print_summary(incident: DemoIncident, outcome: Any, run_dir: Path, started: float) -> None:
    """The closing summary: ground truth, the plan's and the patch's counts, the checks, the archive."""
    plan, journal = _plan_counts(run_dir), journal_status_counts(run_dir)
    print()
    print("== recovery demo summary ==")
    print(
        f"corrupted items (ground truth): {sum(incident.corrupted.values())} "
        f"(updated {incident.corrupted['update']}, deleted {incident.corrupted['delete']}, "
        f"created {incident.corrupted['create']})"
    )
    print(f"plan: {plan}")
    print(f"patch results: {journal}")
    print(
        f"restored (put back or reverted): {plan.get('changed', 0) + plan.get('deleted', 0)}, "
        f"deleted: {plan.get('created', 0)}, left alone: {plan.get('unchanged', 0)}, "
        f"conflicts: {journal.get('conflict', 0)}"
    )
    for line in outcome.lines():
        print(line)
    print(f"archive: {run_dir.resolve()}")
    print(f"took {time.time() - started:.1f}s")


def serve_until_interrupted(
    sb: Any, out: Callable[[str], None] = print, stop: threading.Event | None = None
) -> None:
    """--keep-sandbox: print how to reach the sandbox (its export lines), keep it up until Ctrl-C (or ``stop``)."""
    from ..sandbox import main_env_lines

    out(
        f"sandbox still serving at {sb.endpoint_url}; paste these lines into a shell to look around, Ctrl-C to stop"
    )
    out(main_env_lines(sb))
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.stage_only:
        from ..rehearsal import stage_only

        return stage_only(
            args.incident_id, port=args.port, runs_dir=args.runs_dir, orders_per_tenant=args.orders_per_tenant
        )

    from ..incident import validate_incident_id
    from ..runner import run_steps
    from ..sandbox import Sandbox

    validate_incident_id(args.incident_id)
    run_dir = Path(args.runs_dir) / args.incident_id
    if run_dir.exists() and any(run_dir.iterdir()):
        print(
            f"error: {run_dir} already holds a run; pass another --incident-id or remove it", file=sys.stderr
        )
        return 2
    started = time.time()
    with Sandbox(export_min_window_seconds=1) as sb:
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.update(sb.env())
        admin = Aws(region=sb.region, endpoint_url=sb.endpoint_url)
        print(f"sandbox: {sb.endpoint_url}")
        incident = stage(
            admin, run_dir / "demo", orders_per_tenant=args.orders_per_tenant, clock=sb.clock.now
        )
        print(
            f"incident staged: {incident.items} orders, deploy v2.3.1 corrupted {sum(incident.corrupted.values())} "
            f"({incident.corrupted}) for {', '.join(incident.affected_tenants)}; "
            f"{incident.legitimate_writes} legitimate writes meanwhile"
        )
        params = demo_parameters(
            incident, incident_id=args.incident_id, endpoint_url=sb.endpoint_url, runs_dir=args.runs_dir
        )
        (run_dir / "demo" / "parameters.yaml").write_text(_yaml(params))
        steps = args.steps.split(",") if args.steps else None
        result = run_steps(params, steps)
        if not result.ok:
            print(f"runbook failed at step {result.failed_step}: see {run_dir}", file=sys.stderr)
            return 1
        outcome = check(admin, incident)
        _print_summary(incident, outcome, run_dir, started)
        if args.keep_sandbox:
            serve_until_interrupted(sb)
        return 0 if outcome.ok else 1


def _yaml(params: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(params, sort_keys=False)
