"""Inside a venv where the provider's wheel is installed beside some Airflow: does everything load?

    python scripts/smoke_installed.py DAGS_FOLDER

Imports every module of the installed package (not the checkout: run it from outside the repository),
checks that Airflow discovers the provider, its three connection types with their form fields, and
its plugins, and parses the example DAGs with no import error. Exit status 0 only if all of that holds.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import sys
import warnings
from pathlib import Path

CONN_TYPES = ("dropstream", "dcl", "stream")


def import_every_module() -> list[str]:
    import airflow_provider_fulfillment as package

    names = [package.__name__]
    names += [module.name for module in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    problems = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:  # every failure is reported, not just the first
            problems.append(f"import {name}: {type(error).__name__}: {error}")
    print(f"  imported {len(names) - len(problems)} of {len(names)} modules from {package.__file__}")
    return problems


def provider_is_discovered() -> list[str]:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    problems = []
    if "airflow-provider-fulfillment" not in manager.providers:
        problems.append("Airflow does not list the provider (apache_airflow_provider entry point)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hooks = manager.hooks
    for conn_type in CONN_TYPES:
        if hooks.get(conn_type) is None:
            problems.append(f"no hook for connection type {conn_type!r}")
        if conn_type not in manager.field_behaviours:
            problems.append(f"no form behaviour for connection type {conn_type!r}")
    extra_fields = [
        name for name in manager.connection_form_widgets if name.startswith("extra__dropstream__")
    ]
    if not extra_fields:
        problems.append("the DropStream connection form has no extra fields")
    plugins = {entry.name for entry in importlib.metadata.entry_points(group="airflow.plugins")}
    for plugin in plugins & {"fulfillment", "fulfillment_connection_test"}:
        entry = next(e for e in importlib.metadata.entry_points(group="airflow.plugins") if e.name == plugin)
        try:
            entry.load()
        except Exception as error:
            problems.append(f"plugin {plugin}: {type(error).__name__}: {error}")
    print(f"  provider discovered: hooks for {', '.join(CONN_TYPES)}; plugins {sorted(plugins)}")
    return problems


def parse_dags(folder: Path) -> list[str]:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag

    sys.path.append(str(folder))
    bag = DagBag(dag_folder=str(folder), bundle_path=folder, bundle_name="dags-folder")
    print(f"  parsed {len(bag.dags)} DAGs: {', '.join(sorted(bag.dags))}")
    problems = [f"DAG import error in {path}: {error}" for path, error in bag.import_errors.items()]
    if not bag.dags:
        problems.append(f"no DAG found in {folder}")
    return problems


def main() -> int:
    import airflow

    folder = Path(sys.argv[1]).resolve()
    print(f"Airflow {airflow.__version__}, Python {sys.version.split()[0]}")
    problems = import_every_module() + provider_is_discovered() + parse_dags(folder)
    for problem in problems:
        print(f"  FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
