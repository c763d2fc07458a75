"""`txchaos check` against a plain one-pass Python check, on the same files, at 100k, 1M, 10M events.

    .venv/bin/python bench/checkers.py [--sizes 100000,1000000,10000000] [--dir DIR]
                                        [--baseline-limit-gib 4]

For each size it writes a correct run (history.jsonl + state.json: about one
payment per two events, four participants, coordinator records, 5% reads, 5%
unknown outcomes) into a temporary directory (or DIR; removed at the end
unless --dir), then runs, each in its own process so that peak memory is that
run's own (ru_maxrss of the child, from wait4):

- txchaos: `python -m harness check --history H --state S` (the CLI, imports included);
- baseline: a plain one-pass checker (json.loads per line, the state as Python
  dicts, the invariants as dict loops), the way one would write it first. It
  runs under an address-space limit (default 4 GiB) so that it cannot take a
  shared machine's memory; past it, the row says so.

Columns: wall seconds, CPU seconds (user + system, the process's own; on a busy
machine wall >> CPU), peak memory (the largest process's peak RSS, or the peak PSS
of the process and its workers together, whichever is larger), events per wall
second, and baseline / txchaos ratios. The load average is printed beside each row: numbers from a shared
machine are comparable only at similar load. Targets (docs/checkers.md): 1M
events + 500k payments in <= 3 s and <= 512 MiB; 10M in <= 45 s and <= 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = {f"acct-{i:02d}": ("accounts-a" if i <= 4 else "accounts-b") for i in range(1, 9)}
SERVICES = ["ledger", "notifications"]


def generate(events: int, directory: Path, seed: int = 1) -> int:
    """Write a correct run of about `events` history events; returns the number of payments."""
    rng = random.Random(seed)
    accts = sorted(ACCOUNTS)
    balances = {a: 1000 for a in accts}
    parts = ["accounts-a", "accounts-b", *SERVICES]
    txns: dict[str, list[str]] = {p: [] for p in parts}
    coord: list[str] = []
    committed, aborted = '{"state":"committed","applied":1}', '{"state":"aborted","applied":0}'
    plist = {k: json.dumps(sorted({ACCOUNTS[s], ACCOUNTS[d]}) + SERVICES)
             for s in accts for d in accts if s != d for k in [(s, d)]}
    process = index = n = t = 0
    rand, randint, sample = rng.random, rng.randint, rng.sample
    with open(directory / "history.jsonl", "w") as h:
        out: list[str] = []
        while index < events:
            t += randint(1000, 50000)
            if rand() < 0.05:
                out.append(f'{{"index":{index},"time":{t},"process":{process},"type":"invoke",'
                           f'"f":"read","value":null}}\n{{"index":{index + 1},"time":{t + 500},'
                           f'"process":{process},"type":"ok","f":"read","value":'
                           f'{json.dumps(balances)}}}\n')
                index += 2
                continue
            n += 1
            pid = f"pay-{n:07d}"
            src, dst = sample(accts, 2)
            amount = randint(1, 30) if rand() > 0.08 else 100000
            value = f'{{"id":"{pid}","from":"{src}","to":"{dst}","amount":{amount}}}'
            commit = balances[src] >= amount and rand() > 0.02
            unknown = rand() < 0.05
            if commit:
                balances[src] -= amount
                balances[dst] += amount
            rec = f'"{pid}":{committed if commit else aborted}'
            for p in {ACCOUNTS[src], ACCOUNTS[dst], *SERVICES}:
                txns[p].append(rec)
            coord.append(f'"{pid}":{{"decision":"{"commit" if commit else "abort"}",'
                         f'"participants":{plist[src, dst]}}}')
            typ = "info" if unknown else "ok" if commit else "fail"
            err = ',"error":"timeout"' if unknown else "" if commit else ',"error":"insufficient-funds"'
            out.append(f'{{"index":{index},"time":{t},"process":{process},"type":"invoke",'
                       f'"f":"transfer","value":{value}}}\n{{"index":{index + 1},"time":{t + 700},'
                       f'"process":{process},"type":"{typ}","f":"transfer","value":{value}{err}}}\n')
            index += 2
            process += unknown
            if len(out) >= 100_000:
                h.write("".join(out))
                out.clear()
        h.write("".join(out))
    with open(directory / "state.json", "w") as s:
        s.write('{"initial_balances":' + json.dumps({a: 1000 for a in accts}) + ',"participants":{')
        for i, p in enumerate(parts):
            owned = {a: b for a, b in balances.items() if ACCOUNTS[a] == p}
            s.write(("," if i else "") + json.dumps(p) + ':{"txns":{')
            s.write(",".join(txns[p]))
            s.write("}" + (',"balances":' + json.dumps(owned) if owned else "") + "}")
            txns[p] = []
        s.write('},"coordinator":{"payments":{' + ",".join(coord) + "}}}")
    return n


# ---------------------------------------------------------------- the baseline

BASELINE = r'''
import json, sys
h, s = sys.argv[1], sys.argv[2]
state = json.load(open(s))
parts = state["participants"]
coord = state.get("coordinator", {}).get("payments", {})
transfers, outcomes, open_, bad = {}, [], {}, 0
for line in open(h):
    op = json.loads(line)
    if op["process"] == "nemesis":
        continue
    if op["type"] == "invoke":
        open_[op["process"]] = op
        if op["f"] == "transfer":
            transfers.setdefault(op["value"]["id"], op["value"])
    else:
        inv = open_.pop(op["process"])
        if op["f"] == "transfer":
            outcomes.append((op["type"], inv["value"]["id"]))
for inv in open_.values():
    if inv["f"] == "transfer":
        outcomes.append(("info", inv["value"]["id"]))
def states(pid):
    return [parts[p].get("txns", {}).get(pid, {}).get("state", "absent")
            for p in coord[pid]["participants"]]
for pid in coord:  # atomicity
    st = set(states(pid))
    bad += "committed" in st and len(st) > 1
for typ, pid in outcomes:  # client agreement
    st = set(states(pid))
    bad += (typ == "ok" and st != {"committed"}) or (typ == "fail" and "committed" in st)
for p in parts.values():  # exactly once
    for rec in p.get("txns", {}).values():
        bad += rec["applied"] != (1 if rec["state"] == "committed" else 0)
expected = dict(state["initial_balances"])  # conservation
for p in parts.values():
    owned = p.get("balances", {})
    for pid, rec in p.get("txns", {}).items():
        if rec["state"] == "committed":
            t = transfers[pid]
            if t["from"] in owned:
                expected[t["from"]] -= t["amount"]
            if t["to"] in owned:
                expected[t["to"]] += t["amount"]
finals = {a: b for p in parts.values() for a, b in p.get("balances", {}).items()}
bad += sum(finals[a] != b for a, b in expected.items())
print("violations", bad)
sys.exit(1 if bad else 0)
'''


def _limit(gib: float) -> Any:
    def set_limit() -> None:
        lim = int(gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    return set_limit


def _tree_pss_kib(pid: int) -> int:
    """Memory of a process and all its descendants (worker processes count): the sum of
    their proportional set sizes, so that pages a forked worker shares with its parent
    count once (a sum of RSS counts them in both and overstates the tree)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0)
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            pass
    return total


def measure(cmd: list[str], limit_gib: float | None = None) -> dict[str, Any]:
    """Run `cmd`; wall seconds, CPU seconds (with its workers) and peak memory: the larger
    of the largest process's own peak RSS (from wait4) and the peak PSS of the process
    and its workers together (sampled every 20 ms)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=out, env=env, cwd=ROOT,
                             preexec_fn=_limit(limit_gib) if limit_gib else None)
        tree = 0
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            tree = max(tree, _tree_pss_kib(p.pid))
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
    p.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
            "peak_mib": max(ru.ru_maxrss, tree) / 1024, "rc": p.returncode, "out": text}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000,10000000")
    ap.add_argument("--dir", type=Path, default=None, help="generate (and keep) the runs under DIR")
    ap.add_argument("--baseline-limit-gib", type=float, default=4.0)
    args = ap.parse_args()
    py = sys.executable
    base = args.dir or Path(tempfile.mkdtemp(prefix="txchaos-bench-"))
    head = (f"{'events':>10} {'payments':>9} {'MB':>6}  {'who':<8} {'wall s':>7} {'cpu s':>7} "
            f"{'peak MiB':>9} {'events/s':>10}  {'load':>5}  note")
    print(head)
    print("-" * len(head))
    try:
        for size in sorted(int(x) for x in args.sizes.split(",")):
            d = base / str(size)
            d.mkdir(parents=True, exist_ok=True)
            if not (d / "state.json").exists():
                payments = generate(size, d)
                (d / "payments").write_text(str(payments))
            payments = int((d / "payments").read_text())
            h, s = d / "history.jsonl", d / "state.json"
            mb = (h.stat().st_size + s.stat().st_size) / 1e6
            rows = {}
            for who, cmd, lim in [
                    ("txchaos", [py, "-m", "harness", "check", "--history", str(h), "--state",
                                 str(s)], None),
                    ("baseline", [py, "-c", BASELINE, str(h), str(s)], args.baseline_limit_gib)]:
                load = os.getloadavg()[0]
                r = rows[who] = measure(cmd, lim)
                ok = r["rc"] == 0
                note = "" if ok else (f"stopped: over {lim:g} GiB or failed (exit {r['rc']})"
                                      if who == "baseline" else f"exit {r['rc']}: {r['out'][-300:]}")
                print(f"{size:>10} {payments:>9} {mb:>6.0f}  {who:<8} {r['wall']:>7.2f} "
                      f"{r['cpu']:>7.2f} {r['peak_mib']:>9.0f} "
                      f"{(size / r['wall']) if ok else 0:>10.0f}  {load:>5.1f}  {note}", flush=True)
            t, b = rows["txchaos"], rows["baseline"]
            if t["rc"] == 0 and b["rc"] == 0:
                print(f"{'':>27}  ratio    {b['wall'] / t['wall']:>7.1f}x {b['cpu'] / t['cpu']:>6.1f}x "
                      f"{b['peak_mib'] / t['peak_mib']:>8.1f}x   (baseline / txchaos)", flush=True)
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
