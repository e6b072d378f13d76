"""Service records: check-in and check-out with electronic visit verification, corrections, a tamper-evident ledger."""
