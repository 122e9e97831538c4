"""OpenLineage datasets for extraction and the ledger load (used when the openlineage provider is installed).

Naming follows OpenLineage's conventions: an HTTP API is ``namespace = scheme://host[:port]`` and
``name = the endpoint's path``; a file is ``namespace = "file"`` (or ``scheme://bucket`` for object
storage) and ``name = its path``; a table is ``postgres://host:port`` + ``database.schema.table``, or
``sqlite://<database file>`` + the table. Row counts travel in the ``outputStatistics`` facet.
Nothing here runs unless Airflow's OpenLineage listener asks an operator for its lineage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

# The endpoint each resource is read from (DCL's and Stream's shipments come nested in orders).
ENDPOINTS: Mapping[tuple[str, str], str] = {
    ("dropstream", "orders"): "/orders",
    ("dropstream", "shipments"): "/shipments",
    ("dcl", "orders"): "/orders",
    ("dcl", "shipments"): "/orders",
    ("stream", "orders"): "/orders",
    ("stream", "shipments"): "/orders",
}


def endpoint_dataset(base_url: str, vendor: str, resource: str) -> tuple[str, str]:
    """(namespace, name) of the vendor endpoint a resource is read from; no credentials, no query."""
    parts = urlsplit(base_url)
    port = f":{parts.port}" if parts.port else ""
    path = parts.path.rstrip("/") + ENDPOINTS[(vendor, resource)]
    return f"{parts.scheme}://{parts.hostname}{port}", path


def file_dataset(uri: str) -> tuple[str, str]:
    """(namespace, name) of a written file: ``file`` + path, or ``s3://bucket`` + key, as common.io names them."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return ("file" if not parts.netloc else f"file://{parts.netloc}"), parts.path
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


def ledger_table_dataset(hook: Any, table: str) -> tuple[str, str]:
    """(namespace, name) of a ledger table behind a common.sql hook (SQLite or PostgreSQL)."""
    parts = urlsplit(hook.get_uri())
    if parts.scheme.startswith("sqlite"):
        return f"sqlite:///{parts.path.lstrip('/')}", table
    port = parts.port or 5432
    database = parts.path.lstrip("/") or "postgres"
    return f"postgres://{parts.hostname}:{port}", f"{database}.public.{table}"


def operator_lineage(
    inputs: list[tuple[str, str]], outputs: list[tuple[str, str, int | None, int | None]]
) -> Any:
    """An ``OperatorLineage`` of input datasets and output datasets with (rows, bytes) statistics."""
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(
        inputs=[InputDataset(namespace=namespace, name=name) for namespace, name in inputs],
        outputs=[
            OutputDataset(
                namespace=namespace,
                name=name,
                outputFacets={
                    "outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=rows, size=size)
                },
            )
            for namespace, name, rows, size in outputs
        ],
    )
