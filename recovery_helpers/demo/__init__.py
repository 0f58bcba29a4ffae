"""The demo incident, apart from the runbook's steps: staged in the sandbox, run headless, checked.

* ``stage``: the world (table, app role, read-only parameter, log group, audit table), the simulated
  application and the buggy deploy, with the ground truth;
* ``check``: the live table against the model of a correct recovery;
* ``run``: ``recovery demo`` (``main``) and the parameters it runs the notebooks with.
"""

from .check import CheckResult, check
from .run import demo_parameters, main
from .stage import (
    CORRUPTED_ATTRIBUTES,
    DEFAULT,
    KEY,
    TENANT_ATTRIBUTE,
    DemoApp,
    DemoIncident,
    Names,
    stage,
)

__all__ = [
    "CORRUPTED_ATTRIBUTES",
    "DEFAULT",
    "KEY",
    "TENANT_ATTRIBUTE",
    "CheckResult",
    "DemoApp",
    "DemoIncident",
    "Names",
    "check",
    "demo_parameters",
    "main",
    "stage",
]
