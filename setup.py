"""Package list for setuptools (everything else is in pyproject.toml).

The notebooks users open live at the top level (``notebooks/``); a wheel ships them as the package data
``recovery_helpers/notebooks/*.ipynb``, where ``runner.default_notebooks_dir`` finds them with
importlib.resources when there is no source checkout. No copy, no symlink: setuptools maps the directory.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["recovery_helpers", "recovery_helpers.*"]), "recovery_helpers.notebooks"],
    package_dir={"recovery_helpers.notebooks": "notebooks"},
)
