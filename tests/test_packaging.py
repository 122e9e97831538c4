"""What users install: the declared Airflow range and the CI check that proves its floor."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def airflow_floor() -> str:
    [requirement] = [dep for dep in PYPROJECT["project"]["dependencies"] if dep.startswith("apache-airflow>")]
    return re.fullmatch(r"apache-airflow>=(\d+\.\d+\.\d+)", requirement).group(1)


def test_airflow_3_2_is_the_floor_and_the_readme_says_so():
    assert airflow_floor() == "3.2.0"
    assert (
        "**Supported: Apache Airflow 3.2.0 and later 3.x, Python 3.11+.**" in (REPO / "README.md").read_text()
    )


def test_ci_checks_the_floor_with_libraries_as_of_its_release():
    script = (REPO / "scripts" / "check-oldest-airflow.sh").read_text()
    assert re.search(
        rf"^\s*{re.escape(airflow_floor())}\) released=\d{{4}}-\d\d-\d\d ;;$", script, re.MULTILINE
    )
    assert "bash scripts/check-oldest-airflow.sh" in (REPO / ".ci" / "run").read_text().splitlines()
