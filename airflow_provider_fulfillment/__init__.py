"""Apache Airflow 3 provider for the DropStream, DCL and Stream order-fulfillment APIs."""

from __future__ import annotations

from airflow_provider_fulfillment.concurrency import DEFAULT_CEILING
from airflow_provider_fulfillment.vendors import VENDORS, VendorDeclaration

__version__ = "0.1.0"

_RETRY_FIELDS = {
    "timeout": {
        "label": "Timeout (s)",
        "description": "Seconds to wait for the vendor to answer one request.",
        "schema": {"type": ["number", "null"], "default": 30, "exclusiveMinimum": 0, "maximum": 3600},
    },
    "max_attempts": {
        "label": "Max attempts",
        "description": "Attempts per request on connection errors, 5xx and 429 (1 = no retry).",
        "schema": {"type": ["integer", "null"], "default": 5, "minimum": 1, "maximum": 100},
    },
    "max_wait": {
        "label": "Max wait between attempts (s)",
        "description": "Upper bound on one backoff or Retry-After wait.",
        "schema": {"type": ["number", "null"], "default": 60, "minimum": 0, "maximum": 3600},
    },
    "max_concurrency": {
        "label": "Max concurrent requests",
        "description": "Ceiling of requests in flight for this connection. An adaptive controller starts "
        "at 4 and rises toward it only while the vendor answers fast without 429/503.",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_CEILING, "minimum": 1, "maximum": 256},
    },
    "max_requests_per_second": {
        "label": "Max requests per second",
        "description": "A request budget for the whole connection (all tasks' threads in one worker); "
        "empty for none: the client then learns the vendor's limit from its 429s.",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 10000},
    },
}

_TOKEN_FIELD = {
    "token": {
        "label": "Access token",
        "description": "A ready bearer token; when set, login and password are not used.",
        "schema": {"type": ["string", "null"], "format": "password"},
    }
}


def connection_type(vendor: VendorDeclaration) -> dict:
    """One entry of "connection-types", from the vendor's declaration (see vendors.py for why the
    declarations, not the hook classes, are what this reads)."""
    return {
        "hook-class-name": vendor.hook_class,
        "hook-name": vendor.name,
        "connection-type": vendor.conn_type,
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "extra"],
            "relabeling": {"host": "Base URL", "login": vendor.login_label, "password": "Password"},
            "placeholders": {"host": vendor.default_base_url},
        },
        "conn-fields": {**(_TOKEN_FIELD if vendor.accepts_token else {}), **_RETRY_FIELDS},
    }


def get_provider_info() -> dict:
    declared = list(VENDORS.values())
    return {
        "package-name": "airflow-provider-fulfillment",
        "name": "Order fulfillment (DropStream, DCL, Stream)",
        "description": "Extract, reconcile and alert on orders and shipments from DropStream, DCL and Stream.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": vendor.name,
                "external-doc-url": vendor.external_doc_url,
                "tags": ["service"],
            }
            for vendor in declared
        ],
        "hooks": [
            {"integration-name": vendor.name, "python-modules": [vendor.hook_module]} for vendor in declared
        ],
        "operators": [
            {
                "integration-name": "DropStream",
                "python-modules": [
                    "airflow_provider_fulfillment.operators.extract",
                    "airflow_provider_fulfillment.operators.reconcile",
                    "airflow_provider_fulfillment.operators.alert",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "DropStream",
                "python-modules": ["airflow_provider_fulfillment.sensors.state"],
            }
        ],
        "triggers": [
            {
                "integration-name": "DropStream",
                "python-modules": ["airflow_provider_fulfillment.triggers.state"],
            }
        ],
        # Buttons on task instances (the operators declare them; listed here as providers do).
        "extra-links": [
            "airflow_provider_fulfillment.operators.links.FulfillmentRunLink",
            "airflow_provider_fulfillment.operators.links.ExtractOutputLink",
            "airflow_provider_fulfillment.operators.links.ReconcileReportLink",
        ],
        "connection-types": [connection_type(vendor) for vendor in declared],
    }
