from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import airflow_provider_fulfillment as pkg
from airflow_provider_fulfillment.hooks.dcl import DclHook
from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.hooks.stream import StreamHook


def test_provider_info_matches_distribution_and_hooks():
    info = pkg.get_provider_info()
    assert info["package-name"] == "airflow-provider-fulfillment"
    kinds = {k["connection-type"]: k for k in info["connection-types"]}
    assert set(kinds) == {"dropstream", "dcl", "stream"}
    for hook in (DropStreamHook, DclHook, StreamHook):
        kind = kinds[hook.conn_type]
        assert kind["hook-class-name"] == f"{hook.__module__}.{hook.__name__}"
        assert kind["ui-field-behaviour"]["relabeling"]["host"] == "Base URL"
        assert kind["ui-field-behaviour"]["placeholders"]["host"] == hook.default_base_url
        assert {"timeout", "max_attempts", "max_wait", "max_concurrency"} <= set(kind["conn-fields"])
        assert (
            hook.default_conn_name == f"{hook.conn_type}_default" and hook.hook_name and hook.conn_name_attr
        )
        assert hook.get_ui_field_behaviour() == kind["ui-field-behaviour"]
        assert kind == hook.provider_connection_type()  # the table agrees with the hook's declaration
    assert kinds["dropstream"]["conn-fields"]["token"]["schema"]["format"] == "password"
    assert "token" not in kinds["dcl"]["conn-fields"]


def test_entry_point_registered():
    found = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_fulfillment")
    ]
    assert found and found[0].load()()["package-name"] == "airflow-provider-fulfillment"


def test_airflow_providers_list_shows_the_package():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "plain"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "airflow-provider-fulfillment" in out.stdout


def test_readme_state_table_is_the_generated_one():
    from pathlib import Path

    from airflow_provider_fulfillment.models import states

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    embedded = readme.split("<!-- state-table:start -->")[1].split("<!-- state-table:end -->")[0]
    assert embedded.strip() == states.state_table_markdown().strip()
