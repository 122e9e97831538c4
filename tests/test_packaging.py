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


def test_the_package_is_typed():
    assert (REPO / "airflow_provider_fulfillment" / "py.typed").is_file()
    script = (REPO / "scripts" / "check-oldest-airflow.sh").read_text()
    assert "airflow_provider_fulfillment/py.typed" in script  # the built wheel is checked to contain it


def test_numeric_connection_fields_are_bounded_as_the_client_accepts_them():
    from airflow_provider_fulfillment import get_provider_info

    for kind in get_provider_info()["connection-types"]:
        for name, field in kind["conn-fields"].items():
            schema = field["schema"]
            if "number" in schema["type"] or "integer" in schema["type"]:
                assert "maximum" in schema, (kind["connection-type"], name)
                assert "minimum" in schema or "exclusiveMinimum" in schema, (kind["connection-type"], name)
        fields = kind["conn-fields"]
        assert fields["max_attempts"]["schema"]["minimum"] == 1  # 0 attempts would never call the vendor
        assert fields["timeout"]["schema"]["exclusiveMinimum"] == 0


def test_integrations_link_to_the_vendors():
    from airflow_provider_fulfillment import get_provider_info

    for integration in get_provider_info()["integrations"]:
        assert integration["external-doc-url"].startswith("https://"), integration
