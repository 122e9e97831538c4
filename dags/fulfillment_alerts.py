"""How a fulfillment alert leaves Airflow, for the example DAGs (a helper module, not a DAG).

`FulfillmentAlertNotifier` is an Airflow notifier: attach it to a task's `on_failure_callback` (and, for
an alert operator in soft mode, `on_success_callback`) and it sends one alert per firing:

- on failure: the task's error message. `FulfillmentErrorStateOperator` fails with a list a person can
  act on (ids, raw states, since when, "and N more"), and a sensor with the state it failed on.
- on success: the report an alert task returned in soft mode (`soft=True`), when it found records
  (`FulfillmentAlertOperator`: its digest, when anything opened, was reminded or resolved); a
  report with nothing in it sends nothing.

"Sends" here means: logs the alert at WARNING and appends it as one JSON line to a file
(`$AIRFLOW_HOME/fulfillment-alerts.jsonl` unless `path=` says otherwise), which is what `make demo`
reads back. In a real deployment put a channel beside it or in its place, e.g. the SMTP provider
(installed with Airflow) or Slack's:

    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    on_failure_callback=[FulfillmentAlertNotifier(), SmtpNotifier(to="ops@example.com", subject="...")]

    from airflow.providers.slack.notifications.slack import SlackNotifier  # apache-airflow-providers-slack
    on_failure_callback=[SlackNotifier(slack_conn_id="slack_ops", channel="#fulfillment", text="...")]

The DAG files import it by name: Airflow puts the DAGs folder on `sys.path` wherever it parses or runs
them. The DAG processor parses this file too and finds no DAG in it, which is harmless. (Listing it in
`.airflowignore` would spare that, but Airflow 3.3's glob matcher warns of a deprecation in pathspec.)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier, Context

log = logging.getLogger("fulfillment.alerts")

ALERTS_FILE_NAME = "fulfillment-alerts.jsonl"


def default_alerts_path() -> Path:
    """`$AIRFLOW_HOME/fulfillment-alerts.jsonl` (resolved when an alert fires, never at import)."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return Path(home) / ALERTS_FILE_NAME


def summarize_report(report: Mapping[str, Any], max_listed: int = 5) -> str:
    """One line from a `FulfillmentErrorStateOperator` report: count, states, the oldest few ids."""
    vendor = str(report.get("vendor", "?"))
    resource = str(report.get("resource", "records"))
    count = int(report.get("count") or 0)
    by_state = report.get("by_state") or {}
    states = ", ".join(f"{raw}={n}" for raw, n in sorted(by_state.items(), key=lambda kv: (-kv[1], kv[0])))
    records = list(report.get("records") or [])
    listed = ", ".join(
        f"{entry.get('id')} ({entry.get('raw_status')} since {entry.get('since') or '?'})"
        for entry in records[:max_listed]
    )
    more = f" and {count - min(count, max_listed)} more" if count > max_listed else ""
    return f"{vendor} {resource}: {count} in errored states (by state: {states}); oldest: {listed}{more}"


class FulfillmentAlertNotifier(BaseNotifier):
    """Log a fulfillment alert and append it to a JSON-lines file (see the module docstring).

    :param path: the alerts file (templated); default `$AIRFLOW_HOME/fulfillment-alerts.jsonl`.
    :param channel: a label written with each alert (e.g. the team or the channel it is meant for).
    """

    template_fields = ("path", "channel")

    def __init__(self, *, path: str | None = None, channel: str = "fulfillment-ops") -> None:
        super().__init__()
        self.path = path
        self.channel = channel

    def notify(self, context: Context) -> None:
        alert = self.build_alert(context)
        if alert is None:
            return
        log.warning("FULFILLMENT ALERT [%s] %s: %s", alert["channel"], alert["source"], alert["message"])
        target = Path(self.path) if self.path else default_alerts_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as out:  # one short line: appends stay whole
            out.write(json.dumps(alert, separators=(",", ":"), default=str) + "\n")

    def build_alert(self, context: Context) -> dict[str, Any] | None:
        """The alert for this callback, or None when there is nothing to say (a clean soft report)."""
        ti = context["ti"]
        exception = context.get("exception")
        if exception is not None:
            # The alert operators push their full report before failing: "errored" (the stateless
            # errored-state check), "alerts" (the ledger's lifecycle alerts).
            report = ti.xcom_pull(task_ids=ti.task_id, key="errored") or ti.xcom_pull(
                task_ids=ti.task_id, key="alerts"
            )
            message = str(exception) or type(exception).__name__
            kind = "failure"
        else:
            report = ti.xcom_pull(task_ids=ti.task_id)
            if not isinstance(report, Mapping):
                return None
            if "digest" in report:  # FulfillmentAlertOperator: only when something was notified
                if not any(report.get(event) for event in ("opened", "reminder", "resolved")):
                    return None
                message = str(report["digest"])
            elif report.get("count"):
                message = summarize_report(report)
            else:
                return None
            kind = "soft"
        dag_run = context.get("dag_run")
        return {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "channel": self.channel,
            "kind": kind,
            "source": f"{ti.dag_id}.{ti.task_id}",
            "run_id": getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None),
            "vendor": report.get("vendor") if isinstance(report, Mapping) else None,
            "resource": report.get("resource") if isinstance(report, Mapping) else None,
            "count": report.get("count") if isinstance(report, Mapping) else None,
            "by_state": report.get("by_state") if isinstance(report, Mapping) else None,
            "message": message,
        }
