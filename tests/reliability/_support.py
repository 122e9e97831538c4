"""Helpers for the reliability suite: sandbox connections with small retry budgets, running an extract.

Extracts run through `FulfillmentExtractOperator.execute()` with a context carrying the data interval
(what the task runner hands it), which keeps a fault matrix of ~60 extractions fast; the tests that
need the task machinery (failure callbacks, XCom, rendered fields, triggers) use `run_dag`
(`dag.test()`, tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fulfillment.operators._storage import iter_documents, to_path
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.sandbox.testing import SandboxServer

# Key of a record, per vendor: what "exactly the expected id set" is about.
RECORD_KEY = {"dropstream": "id", "dcl": "order_number", "stream": "id"}
ENV_OF_VENDOR = {
    "dropstream": "AIRFLOW_CONN_DROPSTREAM_DEFAULT",
    "dcl": "AIRFLOW_CONN_DCL_DEFAULT",
    "stream": "AIRFLOW_CONN_STREAM_DEFAULT",
}
# Retries stay on, but never wait long: tests assert outcomes, never timing.
FAST_RETRIES = {"max_wait": 0.01, "max_attempts": 10}


def conn_body(sb: SandboxServer, vendor: str, **extra: Any) -> dict[str, Any]:
    """The sandbox's connection for `vendor` (JSON body of AIRFLOW_CONN_*), with `extra` set."""
    body = json.loads(sb.conn_env()[ENV_OF_VENDOR[vendor]])
    body["extra"] = {**FAST_RETRIES, **extra}
    return body


def env_name(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + re.sub(r"[^A-Za-z0-9]", "_", conn_id).upper()


def connect(
    monkeypatch: pytest.MonkeyPatch, sb: SandboxServer, vendor: str, conn_id: str, **extra: Any
) -> str:
    """Define connection `conn_id` (env var, as Airflow reads it without a supervisor) on the sandbox."""
    monkeypatch.setenv(env_name(conn_id), json.dumps(conn_body(sb, vendor, **extra)))
    return conn_id


def context_for(start: datetime, end: datetime) -> dict[str, Any]:
    """What the task runner's context gives an extract: the data interval (no outlet events)."""
    return {"data_interval_start": start, "data_interval_end": end}


def run_extract(
    conn_id: str,
    window: tuple[datetime, datetime],
    destination: Path | str,
    *,
    task_id: str = "extract",
    **kwargs: Any,
) -> dict[str, Any]:
    """Build a `FulfillmentExtractOperator` and execute it on `window` as the run's data interval."""
    operator = FulfillmentExtractOperator(
        task_id=task_id, conn_id=conn_id, destination=str(destination), **kwargs
    )
    return operator.execute(context_for(*window))  # type: ignore[arg-type]


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def read_keys(uri: str, key: str) -> list[Any]:
    """The `key` of every record of an extracted file, in file order."""
    keys = []
    for document in iter_documents(to_path(uri)):
        record = document if isinstance(document, dict) else json.loads(document)
        keys.append(record[key])
    return keys


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_exactly(keys: list[Any], expected: Any) -> None:
    """Exactly the expected keys: none missing, none extra, none twice."""
    duplicates = sorted(k for k, n in Counter(keys).items() if n > 1)
    assert not duplicates, f"{len(duplicates)} duplicated: {duplicates[:5]}"
    expected = set(expected)
    missing, extra = expected - set(keys), set(keys) - expected
    assert not missing and not extra, f"missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}"


def files_under(root: Path) -> list[str]:
    """Every file under `root` (hidden temporaries included), relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------ a scripted vendor on loopback


@dataclass
class Canned:
    """One scripted answer: status, body bytes, content type."""

    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class FakeVendor:
    """A tiny HTTP server on loopback answering scripted bodies by path suffix; counts what it got.

    For what the sandbox is too well-behaved to send: HTML from a proxy, JSON of the wrong shape,
    records whose schema drifted.
    """

    routes: dict[str, Canned] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    url: str = ""

    def answer(self, path: str) -> Canned:
        self.hits[path] += 1
        for suffix, canned in self.routes.items():
            if path.split("?")[0].endswith(suffix):
                return canned
        return Canned(404, b'{"error": "no such route"}')

    def script(self, routes: Mapping[str, Canned | Any]) -> None:
        self.routes = {
            suffix: canned if isinstance(canned, Canned) else Canned(200, json.dumps(canned).encode())
            for suffix, canned in routes.items()
        }
        self.hits.clear()


def python_env(**overrides: str) -> dict[str, str]:
    """The environment for a child Python: this one (AIRFLOW_HOME, AIRFLOW_CONN_*...) plus `overrides`."""
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(overrides)
    return env
