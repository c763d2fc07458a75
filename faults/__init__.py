"""Fault injection: link faults through Toxiproxy, partitions, process, broker and container faults.

`faults.schedule` says what happens when (seeded, or read from schedule.json);
`faults.nemesis` runs it against a Topology, records every start and stop in the
history, and heals on every way out. docs/faults.md lists each family.
"""
