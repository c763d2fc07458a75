"""Which node of a cluster a leader fault strikes: the one whose queues or streams hold the
backlog, else the one leading most of them (harness.lab.cluster.busiest)."""

from __future__ import annotations

from harness.lab.cluster import busiest


def test_the_node_holding_most_waiting_messages_wins_over_the_one_leading_most() -> None:
    assert busiest([("n1", 0), ("n1", 0), ("n2", 5)]) == "n2"
    assert busiest([("n1", 3), ("n2", 2), ("n2", 0)]) == "n1"


def test_without_a_backlog_the_node_leading_most_wins_and_ties_are_stable() -> None:
    assert busiest([("n2", 0), ("n1", 0), ("n2", 0)]) == "n2"
    assert busiest([("n2", 0), ("n1", 0)]) == busiest([("n1", 0), ("n2", 0)]) == "n1"  # by name
    assert busiest([]) is None
