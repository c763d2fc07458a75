"""Checker throughput and peak memory on generated histories of 10k, 100k and 1M operations.

    .venv/bin/python bench/checkers.py [--sizes 10000,100000,1000000] [--keep DIR]

For each size it writes a correct run (history.jsonl + state.json, four
participants, coordinator records) to disk, then times loading both files and
running every checker on the loaded data ("in memory"), in wall-clock seconds and,
because the machine may be shared, also per CPU-second of this process. Sizes run in
ascending order in one process, so the peak RSS printed after each size is that
size's peak. Bar: >= 200,000 ops/s in memory, <= 1 GiB peak at 1M ops.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.checkers import CheckOptions, check_all  # noqa: E402
from harness.history import load_history, load_state  # noqa: E402

ACCOUNTS = {f"acct-{i:02d}": ("accounts-a" if i <= 4 else "accounts-b") for i in range(1, 9)}
SERVICES = ["ledger", "notifications"]


def generate(ops: int, directory: Path, seed: int = 1) -> None:
    """Write a correct run of about `ops` history events: 85% ok, ~10% refused, ~5% info, reads."""
    rng = random.Random(seed)
    accts = sorted(ACCOUNTS)
    balances = {a: 1000 for a in accts}
    txns: dict[str, dict[str, Any]] = {p: {} for p in ["accounts-a", "accounts-b", *SERVICES]}
    payments: dict[str, Any] = {}
    t = 0
    n = 0
    process = 0
    index = 0
    committed = '{"state":"committed","applied":1}'
    aborted = '{"state":"aborted","applied":0}'
    with open(directory / "history.jsonl", "w") as h:
        while index < ops:
            t += rng.randint(1000, 50000)
            if rng.random() < 0.05:
                h.write(f'{{"index":{index},"time":{t},"process":{process},"type":"invoke",'
                        f'"f":"read","value":null}}\n')
                h.write(f'{{"index":{index + 1},"time":{t + 500},"process":{process},"type":"ok",'
                        f'"f":"read","value":{json.dumps(balances)}}}\n')
                index += 2
                continue
            n += 1
            pid = f"pay-{n:06d}"
            src, dst = rng.sample(accts, 2)
            amount = rng.randint(1, 30) if rng.random() > 0.08 else 100000
            value = f'{{"id":"{pid}","from":"{src}","to":"{dst}","amount":{amount}}}'
            h.write(f'{{"index":{index},"time":{t},"process":{process},"type":"invoke",'
                    f'"f":"transfer","value":{value}}}\n')
            ps = sorted({ACCOUNTS[src], ACCOUNTS[dst]}) + SERVICES
            commit = balances[src] >= amount and rng.random() > 0.02
            unknown = rng.random() < 0.05
            if commit:
                balances[src] -= amount
                balances[dst] += amount
            for p in ps:
                txns[p][pid] = committed if commit else aborted
            payments[pid] = {"decision": "commit" if commit else "abort", "participants": ps}
            typ = "info" if unknown else "ok" if commit else "fail"
            err = ',"error":"timeout"' if unknown else "" if commit else ',"error":"insufficient-funds"'
            h.write(f'{{"index":{index + 1},"time":{t + 700},"process":{process},"type":"{typ}",'
                    f'"f":"transfer","value":{value}{err}}}\n')
            index += 2
            if unknown:
                process += 1
    with open(directory / "state.json", "w") as s:
        s.write('{"initial_balances":' + json.dumps({a: 1000 for a in accts}) + ',"participants":{')
        for i, (p, recs) in enumerate(txns.items()):
            s.write(("," if i else "") + json.dumps(p) + ':{"txns":{')
            s.write(",".join(f'"{pid}":{r}' for pid, r in recs.items()))
            owned = {a: b for a, b in balances.items() if ACCOUNTS[a] == p}
            s.write("}" + (',"balances":' + json.dumps(owned) if owned else "") + "}")
        s.write('},"coordinator":{"payments":' + json.dumps(payments) + "}}")


def calibration_ns() -> float:
    """CPU ns per iteration of a plain dict-lookup loop: how fast this machine is right now
    (tens of ns on an idle modern core), so numbers from a busy machine can be read."""
    d = {str(i): i for i in range(100_000)}
    keys = list(d)
    t = time.process_time()
    for _ in range(5):
        for k in keys:
            d.get(k)
    return (time.process_time() - t) / 500_000 * 1e9


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(ops: int, keep: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="txchaos-bench-") as tmp:
        d = keep / str(ops) if keep else Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        generate(ops, d)
        t1 = time.perf_counter()
        c1 = time.process_time()
        history = load_history(d / "history.jsonl")
        state = load_state(d / "state.json")
        t2, c2 = time.perf_counter(), time.process_time()
        report = check_all(history, state, CheckOptions(snapshot_reads=True))
        t3, c3 = time.perf_counter(), time.process_time()
        n = len(history)
        del history, state
    return {"ops": n, "gen_s": t1 - t0, "load_s": t2 - t1, "check_s": t3 - t2,
            "mem_ops_s": n / (t3 - t2), "file_ops_s": n / (t3 - t1),
            "mem_ops_cpu_s": n / (c3 - c2), "file_ops_cpu_s": n / (c3 - c1), "peak_mib": peak_mib(),
            "valid": report.valid}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--keep", type=Path, default=None, help="keep generated runs under DIR")
    args = ap.parse_args()
    cols = ("ops", "gen_s", "load_s", "check_s", "mem_ops_s", "file_ops_s", "mem_ops_cpu_s",
            "file_ops_cpu_s", "peak_mib", "valid")
    print(f"calibration: {calibration_ns():.0f} CPU ns per dict-lookup loop iteration")
    print("  ".join(f"{c:>14}" for c in cols))
    for size in sorted(int(s) for s in args.sizes.split(",")):
        r = bench(size, args.keep)
        print("  ".join(f"{r[c]:>14.2f}" if isinstance(r[c], float) else f"{r[c]!s:>14}"
                        for c in cols), flush=True)
        if r["valid"] is not True:
            print(f"a correct generated run was judged {r['valid']}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
