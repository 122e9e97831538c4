"""Business rules as pure modules: common records in, typed findings out; no Airflow, no I/O."""

from __future__ import annotations
