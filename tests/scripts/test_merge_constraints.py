"""scripts/merge_constraints.py: Airflow's pins win, ours fill in only what Airflow does not name."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "merge_constraints.py"
spec = importlib.util.spec_from_file_location("merge_constraints", SCRIPT)
assert spec is not None and spec.loader is not None
merge_constraints = importlib.util.module_from_spec(spec)
spec.loader.exec_module(merge_constraints)

AIRFLOW = [
    "# This constraints file was automatically generated",
    "apache-airflow==3.3.2",
    "httpx==0.28.1",
    "Pydantic_Core==2.41.5",
    "pyarrow==19.0.1",
]
OURS = [
    "# ours",
    "apache-airflow==3.3.2",
    "httpx==0.27.0",  # different: Airflow's pin must win
    "pydantic-core==2.40.0",  # same package, other spelling
    "msgspec==0.19.0",  # not in Airflow's file: ours is used
    "pyarrow==21.0.0",
    "--index-url https://example.invalid/simple",  # options are never carried over
]


def test_airflows_pins_win_and_ours_only_add_missing_packages():
    merged = merge_constraints.merge(AIRFLOW, OURS)
    assert merged == [
        *AIRFLOW,
        "# Not in Airflow's constraints: this project's pins (constraints.txt)",
        "msgspec==0.19.0",
    ]


def test_names_compare_as_pep_503_normalises_them():
    assert merge_constraints.package_name("Pydantic_Core==2.41.5") == "pydantic-core"
    assert (
        merge_constraints.package_name("zope.interface==7.0 ; python_version >= '3.11'") == "zope-interface"
    )
    assert merge_constraints.package_name("  # comment") is None
    assert merge_constraints.package_name("-c other.txt") is None


def test_the_command_line_writes_the_merged_file(tmp_path):
    (tmp_path / "airflow.txt").write_text("\n".join(AIRFLOW) + "\n")
    (tmp_path / "ours.txt").write_text("\n".join(OURS) + "\n")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "airflow.txt"), str(tmp_path / "ours.txt")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines()[-1] == "msgspec==0.19.0"
    assert "httpx==0.27.0" not in result.stdout
