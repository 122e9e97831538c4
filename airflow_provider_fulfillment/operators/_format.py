"""Text helpers for the operators' messages (they live with the rules, which use them too)."""

from __future__ import annotations

from airflow_provider_fulfillment.rules._format import duration

__all__ = ["duration"]
