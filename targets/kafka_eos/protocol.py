"""The wire protocol every implementation of the EOS payment processor shares.

Topic names, how accounts map to partitions, the JSON records and the mutants.
The Python processor, the Java processor and the adapter all follow this one
page; the Java side mirrors it by hand (targets/kafka_eos/java), so a change
here is a change there.

Layout, for a namespace NS and accounts sorted by name (account i):
- NS.requests   R partitions; a payment goes to partition (i_from mod R), so one
                processor task owns every debit of an account;
- NS.accounts   one partition per account (partition i): its debit and credit records;
- NS.ledger     one partition: one journal record per accepted payment;
- NS.results    R partitions, like requests: one result record per payment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["MUTANTS", "Layout", "decode", "encode", "REQUEST_PARTITIONS"]

REQUEST_PARTITIONS = 2

# name -> what the seeded bug does (both implementations know the same names).
MUTANTS: dict[str, str] = {
    "offsets-outside-txn": "input offsets committed by the consumer after processing (at most once a "
                           "second), outside the transaction: a crash reprocesses payments",
    "fresh-txn-id": "a random transactional id every time a task starts, so a zombie is never fenced",
    "uncommitted-restore": "balances restored and tailed with isolation read_uncommitted, so credits "
                           "of aborted transactions count as money",
    "early-result": "the result record published by a plain producer before the transaction commits",
}


@dataclass(frozen=True)
class Layout:
    """Topic names and partition maps of one deployment (namespace + accounts)."""

    ns: str
    accounts: tuple[str, ...]  # sorted
    request_partitions: int = REQUEST_PARTITIONS

    @property
    def requests(self) -> str:
        return f"{self.ns}.requests"

    @property
    def account_topic(self) -> str:
        return f"{self.ns}.accounts"

    @property
    def ledger(self) -> str:
        return f"{self.ns}.ledger"

    @property
    def results(self) -> str:
        return f"{self.ns}.results"

    @property
    def group(self) -> str:
        return f"{self.ns}.processors"

    def topics(self) -> dict[str, int]:
        """Every topic and its partition count."""
        return {self.requests: self.request_partitions, self.account_topic: len(self.accounts),
                self.ledger: 1, self.results: self.request_partitions}

    def account_partition(self, account: str) -> int:
        return self.accounts.index(account)

    def request_partition(self, source: str) -> int:
        return self.account_partition(source) % self.request_partitions

    def owned(self, request_partition: int) -> list[str]:
        """Accounts whose debits the task of `request_partition` writes."""
        return [a for a in self.accounts if self.request_partition(a) == request_partition]

    def transactional_id(self, request_partition: int) -> str:
        """Stable per input partition: a task's successor fences it (EOS "v1" style)."""
        return f"{self.ns}.tx.p{request_partition}"

    def participant(self, account: str) -> str:
        return f"accounts-p{self.account_partition(account)}"


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def decode(raw: bytes | None) -> dict[str, Any]:
    value = json.loads(raw or b"null")
    if not isinstance(value, dict):
        raise ValueError(f"not a JSON object: {raw!r}")
    return value
