"""Hooks for the three vendors, and `get_hook` to pick one from a connection's type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_fulfillment.hooks.base import FulfillmentHook

HOOK_CLASSES = {
    "dropstream": "airflow_provider_fulfillment.hooks.dropstream.DropStreamHook",
    "dcl": "airflow_provider_fulfillment.hooks.dcl.DclHook",
    "stream": "airflow_provider_fulfillment.hooks.stream.StreamHook",
}


def hook_class(conn_type: str) -> type[FulfillmentHook]:
    from importlib import import_module

    try:
        path = HOOK_CLASSES[conn_type]
    except KeyError:
        raise ValueError(
            f"connection type {conn_type!r} is not a fulfillment connection; "
            f"expected one of {', '.join(HOOK_CLASSES)}"
        ) from None
    module, _, name = path.rpartition(".")
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
