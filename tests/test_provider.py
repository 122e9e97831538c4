from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

import airflow_provider_fulfillment as pkg
from airflow_provider_fulfillment.hooks import HOOK_CLASSES, get_hook, hook_class
from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.vendors import VENDORS


def test_provider_info_is_what_the_hooks_declare():
    """Every entry is read from the declarations the hook classes bind, none spelled twice."""
    info = pkg.get_provider_info()
    assert info["package-name"] == "airflow-provider-fulfillment"
    kinds = {k["connection-type"]: k for k in info["connection-types"]}
    assert list(kinds) == list(VENDORS)
    for conn_type, kind in kinds.items():
        hook = hook_class(conn_type)
        declaration = hook.declaration
        assert declaration is VENDORS[conn_type]
        assert kind["hook-class-name"] == f"{hook.__module__}.{hook.__name__}" == declaration.hook_class
        assert kind["hook-name"] == hook.hook_name == declaration.name
        assert kind["ui-field-behaviour"]["relabeling"]["host"] == "Base URL"
        assert kind["ui-field-behaviour"]["relabeling"]["login"] == hook.login_label
        assert kind["ui-field-behaviour"]["placeholders"]["host"] == hook.default_base_url
        assert {"timeout", "max_attempts", "max_wait", "max_concurrency"} <= set(kind["conn-fields"])
        assert ("token" in kind["conn-fields"]) is hook.accepts_token
        assert hook.default_conn_name == f"{hook.conn_type}_default" and hook.conn_name_attr
        assert hook.get_ui_field_behaviour() == kind["ui-field-behaviour"]
        assert kind == hook.provider_connection_type()
    assert kinds["dropstream"]["conn-fields"]["token"]["schema"]["format"] == "password"
    assert "token" not in kinds["dcl"]["conn-fields"]
    hooks = {hook["integration-name"]: hook["python-modules"] for hook in info["hooks"]}
    assert hooks == {v.name: [hook_class(ct).__module__] for ct, v in VENDORS.items()}
    integrations = [i["integration-name"] for i in info["integrations"]]
    assert integrations == [v.name for v in VENDORS.values()]
    assert {ct: f"{hook_class(ct).__module__}.{hook_class(ct).__name__}" for ct in VENDORS} == HOOK_CLASSES


def test_a_hook_binds_only_its_own_declaration():
    with pytest.raises(TypeError, match="binds the declaration of .*DclHook; each vendor is declared once"):

        class Impostor(DropStreamHook):
            declaration = VENDORS["dcl"]

    class Tuned(DropStreamHook):  # a subclass keeps its parent's declaration
        pass

    assert Tuned.conn_type == "dropstream" and Tuned.declaration is DropStreamHook.declaration


def test_get_hook_picks_the_declared_class(set_connection):
    for conn_type in VENDORS:
        set_connection(f"mine_{conn_type}", conn_type=conn_type, host="http://127.0.0.1:9")
        assert type(get_hook(f"mine_{conn_type}")) is hook_class(conn_type)
    set_connection("other", conn_type="http", host="http://127.0.0.1:9")
    with pytest.raises(
        ValueError, match="'http' is not a fulfillment connection; expected one of dropstream, dcl"
    ):
        get_hook("other")


_DISCOVER = """
import json, sys
from airflow_provider_fulfillment.hooks.{module} import {name}  # the hook first: the old circle
from airflow.providers_manager import ProvidersManager
hooks = ProvidersManager().hooks
print(json.dumps({{ct: hooks[ct].hook_class_name for ct in {conn_types!r}}}))
"""


def test_providers_manager_discovers_the_declared_hooks_in_a_fresh_interpreter():
    dropstream = VENDORS["dropstream"]
    module, _, name = dropstream.hook_class.rpartition(".")
    code = _DISCOVER.format(module=module.rpartition(".")[2], name=name, conn_types=list(VENDORS))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {ct: v.hook_class for ct, v in VENDORS.items()}


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
