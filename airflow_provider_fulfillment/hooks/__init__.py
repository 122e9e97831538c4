"""Hooks for the three vendors, and `get_hook` to pick one from a connection's type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_fulfillment.vendors import VENDORS, declaration_of

if TYPE_CHECKING:
    from airflow_provider_fulfillment.hooks.base import FulfillmentHook

# conn type -> dotted hook class, from the vendors' declarations.
HOOK_CLASSES = {conn_type: vendor.hook_class for conn_type, vendor in VENDORS.items()}


def hook_class(conn_type: str) -> type[FulfillmentHook]:
    """The hook class declared for `conn_type` (imported only now: see vendors.py)."""
    from importlib import import_module

    module, _, name = declaration_of(conn_type).hook_class.rpartition(".")
    return getattr(import_module(module), name)


def get_hook(conn_id: str, **kwargs: Any) -> FulfillmentHook:
    """The vendor hook for `conn_id`, chosen by the connection's type (dropstream, dcl or stream)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return hook_class(conn.conn_type or "")(conn_id, **kwargs)


async def aget_hook(conn_id: str, **kwargs: Any) -> FulfillmentHook:
    """`get_hook` for triggers: reads the connection without blocking the event loop."""
    from airflow.sdk import BaseHook

    conn = await BaseHook.aget_connection(conn_id)
    hook = hook_class(conn.conn_type or "")(conn_id, **kwargs)
    hook._settings = hook._settings_from(conn)
    return hook
