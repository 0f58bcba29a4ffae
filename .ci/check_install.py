"""Run inside a fresh venv where only `pip install .` happened (see `make check-appkit`).

Proves what an application's Lambda gets: the core and appkit import with boto3 alone, none of the runbook's,
the sandbox's or the scale engines' dependencies are installed, and the wheel ships the six notebooks as
package data where the runner finds them with importlib.resources.
"""

import importlib.resources
import importlib.util
import sys

ABSENT = ("jupyterlab", "pandas", "papermill", "moto", "ipywidgets", "deepdiff", "duckdb", "pyspark", "yaml", "orjson")
present = [name for name in ABSENT if importlib.util.find_spec(name) is not None]
if present:
    sys.exit(f"check-appkit: {present} are installed by `pip install .`; the core must need boto3 only")

import recovery_helpers.appkit
import recovery_helpers.appkit.streams_handler
from recovery_helpers.appkit import ChangeLogger, ReadOnlyGuard  # noqa: F401

loaded = [name for name in ABSENT if name in sys.modules]
assert not loaded, loaded
notebooks = importlib.resources.files("recovery_helpers") / "notebooks"
names = sorted(p.name for p in notebooks.iterdir() if p.name.endswith(".ipynb"))
expected = ["01_prepare.ipynb", "02_contain.ipynb", "03_restore.ipynb", "04_diff.ipynb", "05_patch.ipynb",
            "06_lift.ipynb"]
assert names == expected, f"the wheel ships {names} as recovery_helpers/notebooks, not {expected}"
print(f"check-appkit: ok (appkit imports with boto3 only; {len(names)} notebooks shipped as package data; "
      f"{recovery_helpers.appkit.__file__})")
