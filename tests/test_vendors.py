from __future__ import annotations

import msgspec
import pytest

from airflow_provider_fulfillment.models.dcl import DclOrder
from airflow_provider_fulfillment.models.dropstream import DropStreamOrder
from airflow_provider_fulfillment.rawpages import PageSplitter
from airflow_provider_fulfillment.vendors import DCL, DROPSTREAM, STREAM, VENDORS

DCL_ORDER = {"order_number": "ORD-7", "account_number": "10501", "order_stage": 40}


def test_a_dcl_record_names_its_account_as_a_model_a_dict_and_bytes():
    """Every form a record reaches the operators in gives the same account."""
    model = DclOrder.model_validate(DCL_ORDER)
    body = msgspec.json.encode({"orders": [DCL_ORDER]})
    [raw], _ = PageSplitter("orders", (), DCL.identity_fields["orders"]).split(body)
    assert DCL.account_of(model) == DCL.account_of(DCL_ORDER) == DCL.account_of(raw) == "10501"


def test_a_dcl_record_without_an_account_has_none():
    assert DCL.account_of({"order_number": "ORD-7"}) == ""
    assert DCL.account_of(DclOrder.model_validate({"order_number": "ORD-7"})) == ""


@pytest.mark.parametrize("declaration", [DROPSTREAM, STREAM], ids=lambda d: d.vendor)
def test_a_vendor_with_one_account_a_login_reads_none_even_from_a_stray_field(declaration):
    """An undocumented `account_number` a DropStream order happens to carry (kept as an extra) is not
    an account: only the declared field is."""
    order = DropStreamOrder.model_validate({"id": 1, "account_number": "999"})
    assert order.account_number == "999"  # type: ignore[attr-defined]
    assert declaration.account_of(order) == declaration.account_of({"id": 1, "account_number": "9"}) == ""


def test_an_account_field_is_among_the_identity_a_bytes_splitter_decodes():
    """A record kept as bytes carries only its decoded fields: the account must be one of them."""
    for declaration in VENDORS.values():
        if declaration.account_field is not None:
            assert declaration.account_field in declaration.identity_fields["orders"]
