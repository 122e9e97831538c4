"""docker-compose.yaml and the Dockerfile (Docker itself is not needed: the files are read, not run)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CONSTRAINTS = REPO / "constraints.txt"

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
CONNECTIONS = ("AIRFLOW_CONN_DROPSTREAM_DEFAULT", "AIRFLOW_CONN_DCL_DEFAULT", "AIRFLOW_CONN_STREAM_DEFAULT")
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${NAME:-default}` substitution (what `docker compose` does before running anything)."""
    env = env or {}
    return _VARIABLE.sub(lambda m: env.get(m["name"]) or m["default"] or "", text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def airflow_pin() -> str:
    (pin,) = re.findall(r"^apache-airflow==(\S+)$", CONSTRAINTS.read_text(), flags=re.MULTILINE)
    return pin


def test_compose_has_the_official_airflow3_services_and_the_sandbox(services: dict[str, Any]) -> None:
    assert set(AIRFLOW_SERVICES) | {"airflow-init", "postgres", "redis", "sandbox"} <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name
    assert services["airflow-apiserver"]["ports"] == ["8080:8080"]


def test_every_airflow_service_and_the_sandbox_run_the_image_built_from_the_dockerfile(
    services: dict[str, Any],
) -> None:
    built = [name for name, service in services.items() if "build" in service]
    assert set(built) >= {*AIRFLOW_SERVICES, "airflow-init", "sandbox"}
    images = {interpolate(services[name]["image"]) for name in built}
    assert len(images) == 1 and not images.pop().startswith("apache/airflow")
    for name in built:
        build = services[name]["build"]
        assert (REPO / build["context"]).resolve() == REPO and build["dockerfile"] == "Dockerfile", name
    for name in ("postgres", "redis"):  # only the backing services use stock images
        assert "build" not in services[name]


def test_services_share_one_environment_with_the_same_connections(services: dict[str, Any]) -> None:
    airflow = {*AIRFLOW_SERVICES, "airflow-init"}
    reference = services["airflow-apiserver"]["environment"]
    for name in airflow:
        environment = services[name]["environment"]
        for key in (
            *CONNECTIONS,
            "AIRFLOW__CORE__EXECUTOR",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "AIRFLOW_CONFIG",
        ):
            assert environment[key] == reference[key], (name, key)
        assert (
            environment["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
            == "http://airflow-apiserver:8080/execution/"
        )
    assert reference["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert reference["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert reference["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"  # the connection form's Test button
    # One config file on a shared volume: every component sees the secrets airflow-init generated.
    mounts = {name: set(services[name]["volumes"]) for name in airflow}
    assert all(mount == mounts["airflow-apiserver"] for mount in mounts.values())
    assert any(volume.endswith(":/opt/airflow/config") for volume in mounts["airflow-apiserver"])
    assert any(volume.endswith(":/opt/airflow/fulfillment") for volume in mounts["airflow-apiserver"])


def test_connections_point_at_the_sandbox_service_as_the_sandbox_itself_prints_them(
    services: dict[str, Any],
) -> None:
    from airflow_provider_fulfillment.sandbox.app import SandboxConfig
    from airflow_provider_fulfillment.sandbox.testing import conn_env

    sandbox = services["sandbox"]
    command = shlex.split(interpolate(sandbox["command"]))
    assert command[:3] == ["python", "-m", "airflow_provider_fulfillment.sandbox"]
    port = command[command.index("--port") + 1]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert str(port) in {str(value) for value in sandbox["expose"]}
    expected = conn_env(f"http://sandbox:{port}", SandboxConfig())
    environment = services["airflow-worker"]["environment"]
    for key in CONNECTIONS:
        assert json.loads(interpolate(environment[key])) == json.loads(expected[key]), key


def test_connections_can_point_at_real_vendor_accounts_instead(services: dict[str, Any]) -> None:
    real = {
        "DROPSTREAM_BASE_URL": "https://api.getdropstream.com",
        "DROPSTREAM_LOGIN": "api-user",
        "DROPSTREAM_PASSWORD": "s3cret!",
        "DCL_BASE_URL": "https://api.dclcorp.com/api/v1",
        "STREAM_BASE_URL": "https://orders-api-production.vatit-stream.com/client_api/v2",
        "STREAM_LOGIN": "ops@example.com",
    }
    environment = services["airflow-worker"]["environment"]
    dropstream, dcl, stream = (json.loads(interpolate(environment[key], real)) for key in CONNECTIONS)
    assert dropstream == {
        "conn_type": "dropstream",
        "host": "https://api.getdropstream.com",
        "login": "api-user",
        "password": "s3cret!",
    }
    assert (dcl["conn_type"], dcl["host"]) == ("dcl", "https://api.dclcorp.com/api/v1")
    assert (stream["conn_type"], stream["login"]) == ("stream", "ops@example.com")


def test_sandbox_is_healthy_before_the_components_that_call_it(services: dict[str, Any]) -> None:
    assert "_control/health" in " ".join(services["sandbox"]["healthcheck"]["test"])
    assert (
        services["sandbox"]["environment"]["CONNECTION_CHECK_MAX_COUNT"] == "0"
    )  # no Airflow DB to wait for
    for name in ("airflow-worker", "airflow-triggerer"):
        assert services[name]["depends_on"]["sandbox"] == {"condition": "service_healthy"}


def dockerfile_run_scripts() -> list[str]:
    """Each RUN instruction's shell script, continuation lines joined as Docker joins them."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [" ".join(line[len("RUN ") :].split()) for line in text.splitlines() if line.startswith("RUN ")]


def test_dockerfile_builds_from_the_pinned_airflow() -> None:
    text = DOCKERFILE.read_text()
    (base,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", text, flags=re.MULTILINE)
    assert base == f"apache/airflow:{airflow_pin()}"
    assert re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE) == ["${BASE_IMAGE}"]


def test_dockerfile_installs_against_airflows_constraints_for_the_image_and_moves_nothing() -> None:
    (install,) = [script for script in dockerfile_run_scripts() if "pip install" in script]
    # Airflow's published constraints for the image's own Airflow and Python version...
    assert "m.version('apache-airflow')" in install and "sys.version_info[:2]" in install
    assert "apache/airflow/constraints-${airflow_version}/constraints-${python_version}.txt" in install
    # ...merged with ours (Airflow's pins win), Airflow itself pinned, and a before/after comparison.
    assert "merge_constraints.py /tmp/airflow-constraints.txt ${FULFILLMENT_SRC}/constraints.txt" in install
    assert (
        'pip install --no-cache-dir -c /tmp/constraints.txt "apache-airflow==${airflow_version}" '
        '"${FULFILLMENT_SRC}"'
    ) in install
    assert "comm -23 /tmp/before.txt /tmp/after.txt" in install and "exit 1" in install
    syntax = subprocess.run(["bash", "-n", "-c", install], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


def test_compose_reads_real_passwords_from_a_dotenv_that_git_ignores() -> None:
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()
    assert ".env" in COMPOSE.read_text()


def test_no_package_index_urls_anywhere() -> None:
    for path in (DOCKERFILE, COMPOSE, DOCKERIGNORE):
        text = path.read_text()
        for flag in ("--index-url", "--extra-index-url", "PIP_INDEX_URL", "UV_INDEX", " -i "):
            assert flag not in text, (path.name, flag)


def test_dockerignore_lets_through_what_the_dockerfile_copies() -> None:
    allowed = {line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")}
    assert "*" in DOCKERIGNORE.read_text().splitlines()  # an allow-list: nothing else reaches the build
    copied = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY"):
            words = [word for word in line.split()[1:] if not word.startswith("--")]
            copied += words[:-1]
    assert set(copied) >= {"pyproject.toml", "README.md", "constraints.txt", "airflow_provider_fulfillment"}
    for source in copied:
        assert source in allowed, source
        assert (REPO / source).exists(), source
