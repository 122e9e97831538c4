"""Apache Airflow 3 provider for the DropStream, DCL and Stream order-fulfillment APIs."""

from __future__ import annotations

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
        "schema": {"type": ["integer", "null"], "default": 16, "minimum": 1, "maximum": 256},
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


def connection_type(
    conn_type: str, hook: str, name: str, default_url: str, login_label: str, token: bool
) -> dict:
    """One entry of "connection-types". Spelled out below rather than read from the hook classes:
    importing a hook imports airflow.sdk, which calls this during provider discovery; the hooks'
    `provider_connection_type()` builds the same entry from their declarations (a test keeps the
    two equal)."""
    return {
        "hook-class-name": f"airflow_provider_fulfillment.hooks.{hook}",
        "hook-name": name,
        "connection-type": conn_type,
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "extra"],
            "relabeling": {"host": "Base URL", "login": login_label, "password": "Password"},
            "placeholders": {"host": default_url},
        },
        "conn-fields": {**(_TOKEN_FIELD if token else {}), **_RETRY_FIELDS},
    }


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-provider-fulfillment",
        "name": "Order fulfillment (DropStream, DCL, Stream)",
        "description": "Extract, reconcile and alert on orders and shipments from DropStream, DCL and Stream.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "DropStream",
                "external-doc-url": "https://www.getdropstream.com/",
                "tags": ["service"],
            },
            {
                "integration-name": "DCL",
                "external-doc-url": "https://www.dclcorp.com/",
                "tags": ["service"],
            },
            {
                "integration-name": "Stream",
                "external-doc-url": "https://www.vatit-stream.com/",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {
                "integration-name": vendor,
                "python-modules": [f"airflow_provider_fulfillment.hooks.{module}"],
            }
            for vendor, module in (("DropStream", "dropstream"), ("DCL", "dcl"), ("Stream", "stream"))
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
        "connection-types": [
            connection_type(
                "dropstream",
                "dropstream.DropStreamHook",
                "DropStream",
                "https://api.getdropstream.com",
                "API user",
                token=True,
            ),
            connection_type(
                "dcl",
                "dcl.DclHook",
                "DCL",
                "https://api.dclcorp.com/api/v1",
                "Account login",
                token=False,
            ),
            connection_type(
                "stream",
                "stream.StreamHook",
                "Stream",
                "https://orders-api-production.vatit-stream.com/client_api/v2",
                "Email",
                token=True,
            ),
        ],
    }
