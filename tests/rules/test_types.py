"""rules.types: the record_id form that carries the account, and its reverse."""

from __future__ import annotations

import pytest

from airflow_provider_fulfillment.rules.types import local_id, record_key


@pytest.mark.parametrize(
    ("account", "vendor_id", "record_id"),
    [
        ("10501", "D1", "10501/D1"),
        ("10501", "PO/2026/7", "10501/PO/2026/7"),  # an order number may hold the separator
        ("", "97000123", "97000123"),  # DropStream, Stream: no account, the bare id
        ("", "A/1", "A/1"),
    ],
)
def test_record_key_carries_the_account_and_local_id_reverses_it(account, vendor_id, record_id):
    assert record_key(account, vendor_id) == record_id
    assert local_id(record_id, account) == vendor_id


def test_an_account_holding_the_separator_is_refused():
    with pytest.raises(ValueError, match="an account must not contain '/', got '10/501'"):
        record_key("10/501", "D1")
