"""Why msgspec and pyarrow: the alternatives for the two costly steps of `txchaos check`, side by side.

    .venv/bin/python bench/check_engines.py [--events 1000000] [--dir DIR]

On one generated run (bench/checkers.py's generator; about one payment per two events):

1. decoding: the history (JSON lines) and the state (one JSON object) with json,
   orjson and msgspec (untyped, and typed into the records txchaos uses);
2. numbering payment ids (the join of participants' records, coordinator and
   history on the payment id): a Python dict, pyarrow `dictionary_encode`, polars
   `unique` + `join`, DuckDB `GROUP BY` + `JOIN`.

CPU seconds of this process (all threads) and wall seconds, best of --repeat; a
library that is not installed is skipped (only msgspec, numpy and pyarrow are
txchaos dependencies). Import times are printed too: they count in a CLI run.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.checkers import generate  # noqa: E402


def timed(name: str, fn: Callable[[], Any], repeat: int) -> Any:
    best_cpu = best_wall = float("inf")
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        c, w = time.process_time(), time.perf_counter()
        result = fn()
        best_cpu = min(best_cpu, time.process_time() - c)
        best_wall = min(best_wall, time.perf_counter() - w)
    print(f"  {name:<44} cpu {best_cpu:6.2f} s   wall {best_wall:6.2f} s", flush=True)
    return result


def optional(name: str) -> Any:
    try:
        t = time.perf_counter()
        mod = importlib.import_module(name)
        print(f"  import {name:<37} {time.perf_counter() - t:6.2f} s")
        return mod
    except ImportError:
        print(f"  {name}: not installed, skipped")
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=None, help="use (or write) the run under DIR")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    d = args.dir or Path(tempfile.mkdtemp(prefix="txchaos-engines-"))
    try:
        if not (d / "state.json").exists():
            d.mkdir(parents=True, exist_ok=True)
            generate(args.events, d)
        run(d, args.repeat)
    finally:
        if args.dir is None:
            shutil.rmtree(d, ignore_errors=True)
    return 0


def run(d: Path, repeat: int) -> None:
    gc.disable()
    print("imports")
    msgspec, orjson, np = optional("msgspec"), optional("orjson"), optional("numpy")
    pa, pl, duckdb = optional("pyarrow"), optional("polars"), optional("duckdb")
    from harness.checkers import state as S
    from harness.history_columns import _EVENTS

    history = (d / "history.jsonl").read_bytes()
    state = (d / "state.json").read_bytes()
    lines = history.splitlines()
    print(f"history {len(lines)} lines, {len(history) / 1e6:.0f} MB; state {len(state) / 1e6:.0f} MB")

    def chunks(n: int = 8192) -> Any:
        for i in range(0, len(lines), n):
            yield b"[" + b",".join(lines[i:i + n]) + b"]"

    print("decoding the history")
    timed("json.loads, 8192 lines a call", lambda: [json.loads(c) for c in chunks()], repeat)
    if orjson:
        timed("orjson.loads per line", lambda: [orjson.loads(x) for x in lines], repeat)
    timed("msgspec untyped decode_lines", lambda: msgspec.json.Decoder().decode_lines(history), repeat)
    timed("msgspec typed decode_lines (txchaos)", lambda: _EVENTS.decode_lines(history), repeat)
    print("decoding the state")
    timed("json.loads", lambda: json.loads(state), repeat)
    if orjson:
        timed("orjson.loads", lambda: orjson.loads(state), repeat)
    timed("msgspec untyped", lambda: msgspec.json.decode(state), repeat)

    def typed() -> list[Any]:
        top = msgspec.json.decode(state, type=S._State)
        out = [S._TXNS.decode(p.txns) for p in top.participants.values()]
        return out + [S._PAYMENTS.decode(top.coordinator.payments)]
    groups = timed("msgspec typed, per participant (txchaos)", typed, repeat)

    keys = [list(g) for g in groups]
    keys.append([json.loads(x)["value"]["id"] for x in lines if b'"invoke","f":"transfer"' in x])
    del groups
    print(f"numbering {sum(map(len, keys))} payment ids ({len(keys)} batches) in order of first sight")

    def pydict() -> Any:
        m: dict[str, int] = {}
        out = []
        for ks in keys:
            codes = list(map(m.get, ks))
            if None in codes:
                m.update(zip(dict.fromkeys(k for k, c in zip(ks, codes) if c is None), count(len(m))))
                codes = list(map(m.__getitem__, ks))
            out.append(np.array(codes))
        return out
    timed("Python dict", pydict, repeat)
    if pa:
        def arrow() -> Any:
            enc = pa.chunked_array([pa.array(k, pa.string()) for k in keys]).dictionary_encode()
            return [c.indices.to_numpy() for c in enc.chunks]
        timed("pyarrow dictionary_encode (txchaos)", arrow, repeat)
    if pl:
        def polars() -> Any:
            frames = [pl.DataFrame({"k": k}) for k in keys]
            rows = pl.concat(frames).unique(maintain_order=True).with_row_index("row")
            return [f.join(rows, on="k", how="left", maintain_order="left")["row"].to_numpy()
                    for f in frames]
        timed("polars unique + join", polars, repeat)
    if duckdb and pa:
        def duck() -> Any:
            con = duckdb.connect()
            tabs = [pa.table({"k": pa.array(k, pa.string()), "pos": np.arange(len(k))}) for k in keys]
            con.register("allk", pa.concat_tables([t.select(["k"]) for t in tabs]))
            rows = con.sql("select k, row_number() over (order by first) - 1 as row from "
                           "(select k, min(i) as first from (select k, row_number() over () as i "
                           "from allk) group by k)").to_arrow_table()
            con.register("rows", rows)
            out = []
            for t in tabs:
                con.register("t", t)
                out.append(con.sql("select row from t join rows using (k) order by pos").fetchnumpy()["row"])
            return out
        timed("DuckDB group by + join", duck, repeat)


if __name__ == "__main__":
    sys.exit(main())
