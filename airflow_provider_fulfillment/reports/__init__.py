"""What the ledger says, for people: the overview behind the Fulfillment page and the per-run HTML report."""
