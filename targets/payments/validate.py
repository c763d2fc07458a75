"""Validation of a payment request: a reason a user can act on, or nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def validate_payment(body: Any, accounts: Mapping[str, int]) -> tuple[dict[str, Any], str | None]:
    """The request as a dict and None, or ({}, reason) for an HTTP 400."""
    if not isinstance(body, dict):
        return {}, "body must be a JSON object {id, from, to, amount}"
    pid, source, dest, amount = body.get("id"), body.get("from"), body.get("to"), body.get("amount")
    if not isinstance(pid, str) or not pid.strip() or len(pid) > 200:
        return {}, "missing or empty payment id"
    for field, acct in (("from", source), ("to", dest)):
        if not isinstance(acct, str) or acct not in accounts:
            return {}, f"unknown account in {field!r}: {acct!r}"
    if source == dest:
        return {}, "from and to are the same account"
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return {}, f"amount must be a positive integer, got {amount!r}"
    return {"id": pid, "from": source, "to": dest, "amount": amount}, None
