"""HTML attachments: the verdict table and the evidence of each violation.

Evidence is what turns "atomicity violated" into something a reader can act on:
the payment, what each participant recorded for it, and the history lines that
touched it — all on one page, no terminal needed.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from harness.report.bounded import MAX_HTML
from harness.report.rundir import RunData
from harness.report.secrets import mask, mask_obj

__all__ = ["verdict_html", "evidence_html", "MAX_EXAMPLES", "MAX_SLICE"]

MAX_EXAMPLES = 10   # payments shown per evidence kind
MAX_SLICE = 40      # history lines shown per payment

_STYLE = """<style>
body{font-family:Helvetica,Arial,sans-serif;font-size:13px;color:#222;margin:8px}
table{border-collapse:collapse;margin:6px 0 14px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.v-false{background:#fde2e1;font-weight:bold;color:#a30000}
.v-true{background:#e3f5e6;color:#176b28}
.v-unknown{background:#fff3d6;color:#8a5a00}
code,pre{font-family:Menlo,Consolas,monospace;font-size:12px}
.note{color:#666;font-style:italic}
</style>"""


def _v(valid: Any) -> str:
    text = {True: "valid", False: "VIOLATED"}.get(valid, "unknown")
    cls = {True: "v-true", False: "v-false"}.get(valid, "v-unknown")
    return f'<td class="{cls}">{text}</td>'


def _page(title: str, body: list[str]) -> str:
    html = "\n".join([f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}"
                      f"</title>{_STYLE}</head><body><h2>{escape(title)}</h2>", *body,
                      "</body></html>"])
    if len(html.encode()) > MAX_HTML:
        cut = html.encode()[:MAX_HTML].decode("utf-8", "ignore")
        html = (cut + f"<p class='note'>[cut at {MAX_HTML} bytes; the whole data is in the "
                "run directory]</p></body></html>")
    return mask(html)


def verdict_html(run: RunData) -> str:
    """One row per checker: verdict, summary, and how many examples of each evidence kind."""
    v = run.verdict
    rows = ["<table><tr><th>invariant</th><th>verdict</th><th>summary</th><th>evidence</th></tr>"]
    for c in v.get("checkers", []):
        kinds = ", ".join(f"{escape(k)}: {e.get('count', len(e.get('examples', [])))}"
                          for k, e in (c.get("evidence") or {}).items())
        rows.append(f"<tr><td>{escape(str(c.get('name')))}</td>{_v(c.get('valid'))}"
                    f"<td>{escape(str(c.get('summary', '')))}</td><td>{kinds or '-'}</td></tr>")
    rows.append("</table>")
    meta = run.run
    info = [f"<p>Overall: <b>{ {True: 'valid', False: 'VIOLATED'}.get(v.get('valid'), 'unknown') }"
            f"</b> &mdash; target <code>{escape(str(meta.get('target', '?')))}</code>"
            f", seed <code>{escape(str(meta.get('seed', run.schedule.get('seed', '?'))))}</code>"
            + (f", mutant <code>{escape(str(meta['mutant']))}</code>" if meta.get("mutant") else "")
            + "</p>"]
    if meta.get("command"):
        info.append(f"<p>Reproduce: <code>{escape(str(meta['command']))}</code></p>")
    if run.missing:
        info.append(f"<p class='note'>Not in the run directory: {escape(', '.join(run.missing))}</p>")
    if not v.get("checkers"):
        rows = ["<p class='note'>No verdict was recorded (the run ended before checking).</p>"]
    return _page("Verdict", info + rows)


def _participant_rows(run: RunData, payment: str) -> list[str]:
    rows = ["<table><tr><th>participant</th><th>state</th><th>applied</th></tr>"]
    parts = run.state.get("participants", {}) or {}
    for name, pdata in sorted(parts.items()):
        t = (pdata.get("txns") or {}).get(payment)
        if t is None:
            rows.append(f"<tr><td>{escape(name)}</td><td class='note'>never heard of it</td><td>-</td></tr>")
            continue
        applied = t.get("applied")
        cls = " class='v-false'" if isinstance(applied, int) and applied > 1 else ""
        rows.append(f"<tr><td>{escape(name)}</td><td>{escape(str(t.get('state')))}</td>"
                    f"<td{cls}>{escape(str(applied))}</td></tr>")
    coord = ((run.state.get("coordinator") or {}).get("payments") or {}).get(payment)
    if coord:
        rows.append(f"<tr><td>coordinator</td><td>decision: {escape(str(coord.get('decision')))}"
                    f"</td><td>participants: {escape(', '.join(map(str, coord.get('participants', []))))}"
                    "</td></tr>")
    rows.append("</table>")
    return rows


def _history_slice(run: RunData, payment: str, indexes: list[int]) -> list[str]:
    wanted = set(indexes)
    lines = [op for op in run.history
             if op.get("index") in wanted
             or (isinstance(op.get("value"), dict) and op["value"].get("id") == payment)]
    note = ""
    if len(lines) > MAX_SLICE:
        note = f"<p class='note'>[first {MAX_SLICE} of {len(lines)} lines]</p>"
        lines = lines[:MAX_SLICE]
    if not lines:
        return ["<p class='note'>No history line names this payment.</p>"]
    body = "\n".join(escape(json.dumps(mask_obj(op), sort_keys=False)) for op in lines)
    return [f"<pre>{body}</pre>", note]


def evidence_html(run: RunData, checker: dict[str, Any]) -> str:
    """The payments behind one violated checker: detail, participants' states, history slice."""
    name = str(checker.get("name", "?"))
    body = [f"<p><b>{escape(name)}</b>: {escape(str(checker.get('summary', '')))}</p>"]
    for kind, ev in (checker.get("evidence") or {}).items():
        examples = ev.get("examples") or []
        count = ev.get("count", len(examples))
        body.append(f"<h3>{escape(kind)} &mdash; {count} in all</h3>")
        if count > min(len(examples), MAX_EXAMPLES):
            body.append(f"<p class='note'>[showing the first {min(len(examples), MAX_EXAMPLES)} "
                        f"of {count}; all of them are in verdict.json]</p>")
        for ex in examples[:MAX_EXAMPLES]:
            payment = str(ex.get("payment", "?"))
            body.append(f"<h4>payment <code>{escape(payment)}</code></h4>")
            if ex.get("detail"):
                body.append(f"<p>{escape(str(ex['detail']))}</p>")
            if ex.get("participants"):
                body.append(f"<p>participants named: {escape(', '.join(map(str, ex['participants'])))}</p>")
            body += _participant_rows(run, payment)
            body += _history_slice(run, payment, [int(i) for i in ex.get("indexes") or []])
    return _page(f"Evidence: {name}", body)
