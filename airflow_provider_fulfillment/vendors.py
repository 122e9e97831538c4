"""The vendors, each declared once: what provider discovery, `get_hook`, the operators and the sandbox
read about a vendor without importing its hook.

No Airflow import here, on purpose: Airflow's provider discovery calls `get_provider_info()` while
`airflow.sdk` is still being imported (its configuration reads provider configs), so
`get_provider_info()` cannot import a hook class without importing itself half-initialized. Each hook
class binds its declaration (`declaration = DROPSTREAM`) and takes its vendor attributes from it; the
hook base checks, when the class is defined, that the declaration names that very class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

RESOURCES: tuple[str, ...] = ("orders", "shipments")


def _per_resource(orders: object, shipments: object | None = None) -> Mapping[str, object]:
    return MappingProxyType({"orders": orders, "shipments": orders if shipments is None else shipments})


@dataclass(frozen=True)
class VendorDeclaration:
    """One vendor: its connection type, names, URL, identities, state filter and resources."""

    conn_type: str
    name: str
    hook_class: str
    default_base_url: str
    login_label: str
    external_doc_url: str
    # Whether the connection may carry a ready bearer token in extra `token`.
    accepts_token: bool
    default_window_field: Mapping[str, str]
    # What identifies one record of each resource (DCL orders: order numbers are unique per account).
    identity_fields: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _per_resource(("id",)))
    # The record field naming the account a record belongs to, for vendors whose one login reads
    # several accounts (DCL: order numbers are unique per account only). None: one account a login.
    account_field: str | None = None
    # The server-side filter on a raw state, if the vendor has one (`state=`, `status=`).
    state_filter: str | None = None
    # A vendor whose order is itself the shipment (Stream): its states are the orders' states.
    orders_are_shipments: bool = False
    resources: tuple[str, ...] = RESOURCES

    @property
    def vendor(self) -> str:
        """The vendor's key in ledgers, manifests and state tables: its connection type."""
        return self.conn_type

    @property
    def default_conn_name(self) -> str:
        return f"{self.conn_type}_default"

    @property
    def hook_module(self) -> str:
        return self.hook_class.rpartition(".")[0]

    def account_of(self, record: Any) -> str:
        """The account `record` belongs to, '' where the vendor has none or the record names none.

        A model carries it as an attribute; a dict or a `RawRecord` (a mapping of its decoded
        fields, which hold the identity fields and so the account) through `get`."""
        name = self.account_field
        if name is None:
            return ""
        get = getattr(record, "get", None)
        value = get(name) if callable(get) else getattr(record, name, None)
        return "" if value is None else str(value)

    @property
    def api_path(self) -> str:
        """The path prefix of the vendor's API under its host (`/api/v1`), empty for none."""
        return urlsplit(self.default_base_url).path.rstrip("/")


DROPSTREAM = VendorDeclaration(
    conn_type="dropstream",
    name="DropStream",
    hook_class="airflow_provider_fulfillment.hooks.dropstream.DropStreamHook",
    default_base_url="https://api.getdropstream.com",
    login_label="API user",
    external_doc_url="https://www.getdropstream.com/",
    accepts_token=True,
    default_window_field=_per_resource("created_at"),
    state_filter="state",
)
DCL = VendorDeclaration(
    conn_type="dcl",
    name="DCL",
    hook_class="airflow_provider_fulfillment.hooks.dcl.DclHook",
    default_base_url="https://api.dclcorp.com/api/v1",
    login_label="Account login",
    external_doc_url="https://www.dclcorp.com/",
    accepts_token=False,
    default_window_field=_per_resource("modified_at"),
    identity_fields=_per_resource(("account_number", "order_number"), ("ship_id",)),
    account_field="account_number",
    # DCL filters stages through its `filter=order_stage eq N` syntax, which the hook builds.
    state_filter=None,
)
STREAM = VendorDeclaration(
    conn_type="stream",
    name="Stream",
    hook_class="airflow_provider_fulfillment.hooks.stream.StreamHook",
    default_base_url="https://orders-api-production.vatit-stream.com/client_api/v2",
    login_label="Email",
    external_doc_url="https://www.vatit-stream.com/",
    accepts_token=True,
    default_window_field=_per_resource("created_at"),
    state_filter="status",
    orders_are_shipments=True,
)

VENDORS: Mapping[str, VendorDeclaration] = MappingProxyType(
    {declaration.conn_type: declaration for declaration in (DROPSTREAM, DCL, STREAM)}
)


def declaration_of(conn_type: str) -> VendorDeclaration:
    """The vendor declared for `conn_type`, or a ValueError that lists the declared ones."""
    try:
        return VENDORS[conn_type]
    except KeyError:
        raise ValueError(
            f"connection type {conn_type!r} is not a fulfillment connection; expected one of {', '.join(VENDORS)}"
        ) from None
