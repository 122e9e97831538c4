"""The README's examples do what it says, against the sandbox's default world."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def python_block_after(heading: str) -> str:
    section = README[README.index(heading) :]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.mark.integration
def test_the_hook_example_prints_records_from_the_default_sandbox(monkeypatch):
    from airflow_provider_fulfillment.sandbox.app import SandboxConfig
    from airflow_provider_fulfillment.sandbox.testing import run_sandbox

    code = python_block_after("## Hooks")
    loops = "\n".join(line for line in code.splitlines() if not line.startswith("hook.get_"))  # ids vary
    defaults = SandboxConfig()
    printed = io.StringIO()
    with run_sandbox(seed=defaults.seed, orders=defaults.orders) as sandbox:
        for name, value in sandbox.conn_env().items():
            monkeypatch.setenv(name, value)
        with contextlib.redirect_stdout(printed):
            exec(compile(loops, "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    orders = [line for line in lines if re.fullmatch(r"\S+ error_sending_to_warehouse error", line)]
    shipments = [line for line in lines if re.fullmatch(r"\S+ \[.*\]", line)]
    assert orders, lines[:5]
    assert shipments, lines[:5]
