"""Reading and validating a target spec (TOML) before anything starts.

Every error is a BadInput that names the file, the key (a dotted path such as
`services.ledger.role`) and what is allowed, so `txchaos run --target
spec:PATH.toml` exits 3 with a message to act on. The result is plain frozen
values (`TargetSpec`); adapters/spec.py runs them. The format: docs/adapters.md.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

from adapters.spec_values import (BROKERS, FAILPOINT_VARS, RESULTS, ROLES, SERVICE_VARS, SUBMIT_VARS,
                                  FailpointSpec, ImageSpec, ReadSpec, Request, Rule, ServiceSpec, SubmitSpec,
                                  TargetSpec, Template)
from harness.errors import BadInput
from harness.model import Outcome

__all__ = ["load_spec"]

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")

class _Table:
    """One TOML table with the dotted key it sits at; every complaint names file and key."""

    def __init__(self, file: Path, key: str, data: Any) -> None:
        self.file, self.key, self.data = file, key, data

    def where(self, key: str) -> str:
        return f"{self.key}.{key}" if self.key and key else (self.key or key)

    def fail(self, key: str, message: str) -> BadInput:
        return BadInput(f"{self.file}: {self.where(key)}: {message}")

    def known(self, *allowed: str) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.fail(key, f"unknown key; allowed here: {', '.join(allowed)}")

    def get(self, key: str, kind: type | tuple[type, ...], what: str, default: Any = ..., ) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, f"missing; expected {what}")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            raise self.fail(key, f"expected {what}, got {type(value).__name__} {value!r}")
        return value

    def table(self, key: str, default: Any = ...) -> _Table | None:
        value = self.get(key, dict, "a table", default)
        return None if value is None else _Table(self.file, self.where(key), value)

    def template(self, key: str, allowed: set[str], default: Any = ...) -> Template | None:
        text = self.get(key, str, "a string", default)
        return None if text is None else _check_template(self, key, text, allowed)

    def strings(self, key: str, default: Any = ...) -> list[str] | None:
        value = self.get(key, list, "a list of strings", default)
        if value is not None and not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a list of strings, got {value!r}")
        return value


def _check_template(t: _Table, key: str, text: str, allowed: set[str]) -> Template:
    tpl = Template(text, t.where(key))
    for name in tpl.names:
        if name not in allowed:
            shown = sorted(n for n in allowed if not n.startswith(("service.", "option.")))
            extra = sorted({n.rsplit(".", 1)[0] + ".*" for n in allowed if n.startswith("service.")})
            opts = [n for n in allowed if n.startswith("option.")]
            raise t.fail(key, f"unknown placeholder {{{name}}}; allowed here: "
                              + ", ".join("{" + n + "}" for n in [*shown, *extra, *opts]))
    return tpl


def _request(t: _Table, allowed: set[str]) -> Request:
    method = t.get("method", str, "an HTTP method such as GET or POST", "GET").upper()
    if method not in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        raise t.fail("method", f"expected GET, POST, PUT, DELETE or PATCH, got {method!r}")
    url = t.template("url", allowed)
    assert url is not None
    if not url.text.startswith(("http://", "https://", "{")):
        raise t.fail("url", f"expected an http:// URL, got {url.text!r}")
    headers = t.get("headers", dict, "a table of header strings", {})
    return Request(method, url, t.template("body", allowed, None), {str(k): str(v) for k, v in headers.items()})


def _rules(t: _Table) -> tuple[Rule, ...]:
    raw = t.get("outcome", list, "an array of tables [[submit.outcome]]", [])
    rules = []
    for i, item in enumerate(raw):
        r = _Table(t.file, f"{t.where('outcome')}[{i}]", item if isinstance(item, dict) else {})
        if not isinstance(item, dict):
            raise t.fail(f"outcome[{i}]", "expected a table with status and result")
        r.known("status", "json", "contains", "result")
        status = r.get("status", (int, list), "an HTTP status or a list of them")
        statuses = status if isinstance(status, list) else [status]
        if not statuses or not all(isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599
                                   for s in statuses):
            raise r.fail("status", f"expected HTTP statuses (100-599), got {status!r}")
        result = r.get("result", str, "ok, fail or unknown")
        if result not in RESULTS:
            raise r.fail("result", f"expected ok, fail or unknown, got {result!r}")
        rules.append(Rule(frozenset(statuses), r.get("json", dict, "a table of expected JSON fields", {}),
                          r.get("contains", str, "a string", None), RESULTS[result]))
    return tuple(rules)


def _outcome(t: _Table, key: str) -> Outcome:
    value = t.get(key, str, "unknown or fail", "unknown")
    if value not in ("unknown", "fail"):
        raise t.fail(key, f"expected unknown (the default) or fail, got {value!r}")
    return RESULTS[value]


def _command(t: _Table, key: str, text: str, spec_dir: Path) -> Path | None:
    """A program must exist now: a path (relative to the spec) or a program on PATH / .cache/bin."""
    from harness.lab.binaries import CACHE

    if "{" in text.replace("{spec_dir}", ""):
        return None  # filled at start; checked by the process start
    text = text.replace("{spec_dir}", str(spec_dir))
    if "/" in text:
        path = (spec_dir / text).resolve()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise t.fail(key, f"command not found: {path} is not an executable file")
        return path
    found = shutil.which(text, path=f"{CACHE / 'bin'}:{os.environ.get('PATH', '')}")
    if found is None:
        raise t.fail(key, f"command not found: {text!r} is not on PATH nor in {CACHE / 'bin'}"
                          " (run scripts/bootstrap.sh if it is built there)")
    return Path(found)


def load_spec(path: str | Path) -> TargetSpec:
    """Read and validate a target spec; BadInput naming file and key on any problem."""
    file = Path(path).resolve()
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise BadInput(f"{file}: no such target spec") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise BadInput(f"{file}: cannot read the target spec ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{file}: not valid TOML: {e}") from None
    root = _Table(file, "", data)
    root.known("target", "options", "timeouts", "env", "images", "services", "submit", "read", "failpoints",
               "mutants")
    target = root.table("target")
    assert target is not None
    target.known("name", "broker", "roles", "no_negative")
    name = target.get("name", str, "the target's name (letters, digits, -)")
    broker = target.get("broker", str, f"one of {', '.join(BROKERS)} or none", "none")
    if broker not in (*BROKERS, "none"):
        raise target.fail("broker", f"expected one of {', '.join(BROKERS)} or none, got {broker!r}")
    roles = (*ROLES, *(target.strings("roles", []) or []))

    options_t = root.table("options", {})
    assert options_t is not None
    options = {}
    for k, v in options_t.data.items():
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise options_t.fail(k, f"expected a default value (string or number), got {v!r}")
        options[k] = str(v)
    timeouts_t = root.table("timeouts", {})
    assert timeouts_t is not None
    timeouts = {k: float(timeouts_t.get(k, (int, float), "seconds (a number)")) for k in timeouts_t.data}
    for k, v in timeouts.items():
        if v <= 0:
            raise timeouts_t.fail(k, f"expected a positive number of seconds, got {v:g}")

    images_t = root.table("images", {})
    assert images_t is not None
    images = {}
    for tag in images_t.data:
        image_t = images_t.table(tag)
        assert image_t is not None
        image_t.known("binary")
        binary = _command(image_t, "binary", image_t.get("binary", str, "a statically linked program"), file.parent)
        images[tag] = ImageSpec(tag, binary)  # type: ignore[arg-type]
    services_t = root.table("services")
    assert services_t is not None
    if not services_t.data:
        raise services_t.fail("", "expected at least one [services.NAME] table")
    names = list(services_t.data)
    option_vars = {f"option.{k}" for k in options}
    service_refs = {f"service.{n}.{a}" for n in names for a in ("url", "address")}
    shared_env = root.table("env", {})  # every service's environment; a service's own env wins
    assert shared_env is not None
    services: dict[str, ServiceSpec] = {}
    for sname in names:
        s = services_t.table(sname)
        assert s is not None
        if not _NAME.match(sname):
            raise services_t.fail(sname, "a service name is lower-case letters, digits and -")
        s.known("role", "command", "args", "env", "health", "state", "state_command", "failpoints", "image")
        role = s.get("role", str, f"one of {', '.join(roles)}")
        if role not in roles:
            raise s.fail("role", f"unknown role {role!r}; expected one of {', '.join(roles)} "
                                 "(add your own word to [target] roles)")
        own = {*SERVICE_VARS, *option_vars, *(r for r in service_refs if not r.startswith(f"service.{sname}."))}
        if broker == "none":
            own -= {"broker_url", "broker_address"}
        command = s.template("command", own)
        assert command is not None
        image = s.get("image", str, "an image name (one of [images] or in the Docker engine)", None)
        if image is None:
            _command(s, "command", command.text, file.parent)
        args = tuple(_check_template(s, f"args[{i}]", a, own) for i, a in enumerate(s.strings("args", []) or []))
        env_t = s.table("env", {})
        assert env_t is not None
        env = {**{k: shared_env.template(k, own) for k in shared_env.data},
               **{k: env_t.template(k, own) for k in env_t.data}}
        direct = own - service_refs  # health and state are the harness's view: no proxies
        state_cmd = tuple(_check_template(s, f"state_command[{i}]", a, direct)
                          for i, a in enumerate(s.strings("state_command", []) or []))
        own_points = s.strings("failpoints", None)
        spec = ServiceSpec(sname, role, command, args, env,  # type: ignore[arg-type]
                           s.template("health", direct, None), s.template("state", direct, None), state_cmd,
                           tuple(own_points) if own_points is not None else None, image)
        if role in ROLES and spec.state_url is None and not spec.state_command:
            raise s.fail("state", f"missing; a {role} needs state (an http:// URL returning its record "
                                  "in the docs/formats.md shape) or state_command")
        services[sname] = spec
    if not any(s.role == "coordinator" for s in services.values()) and \
            not any(s.role == "participant" for s in services.values()):
        raise services_t.fail("", "expected at least one service of role coordinator or participant")

    client_vars = {*option_vars, *service_refs}
    submit_t = root.table("submit")
    assert submit_t is not None
    submit_t.known("method", "url", "body", "headers", "outcome", "on_timeout", "on_connection_error")
    submit = SubmitSpec(_request(submit_t, {*client_vars, *SUBMIT_VARS}), _rules(submit_t),
                        _outcome(submit_t, "on_timeout"), _outcome(submit_t, "on_connection_error"))
    if not any(r.result is Outcome.OK for r in submit.rules):
        raise submit_t.fail("outcome", "no rule maps an answer to ok: add [[submit.outcome]] with "
                                       "status = 200 and result = \"ok\" (unmatched answers are unknown)")
    read = None
    read_t = root.table("read", None)
    if read_t is not None:
        read_t.known("method", "url", "body", "headers", "balances", "snapshot")
        read = ReadSpec(_request(read_t, client_vars), read_t.get("balances", str, "a dotted JSON path", ""),
                        bool(read_t.get("snapshot", bool, "true or false", False)))
    failpoints = None
    fp_t = root.table("failpoints", None)
    if fp_t is not None:
        fp_t.known("names", "method", "url", "body", "headers", "disarm")
        fp_vars = {*FAILPOINT_VARS, *option_vars}
        fp_names = fp_t.strings("names")
        if not fp_names:
            raise fp_t.fail("names", "expected at least one failpoint name")
        disarm_t = fp_t.table("disarm", None)
        if disarm_t is not None:
            disarm_t.known("method", "url", "body", "headers")
        failpoints = FailpointSpec(tuple(fp_names), _request(fp_t, fp_vars),
                                   _request(disarm_t, fp_vars) if disarm_t is not None else None)
    for sname, svc in services.items():
        unknown = sorted(set(svc.failpoints or ()) - set(failpoints.names if failpoints else ()))
        if unknown:
            raise services_t.fail(f"{sname}.failpoints", f"{', '.join(unknown)} not in [failpoints] names "
                                  f"({', '.join(failpoints.names) if failpoints else 'there is no [failpoints]'})")
    mutant_env, mutants = None, ()
    mut_t = root.table("mutants", None)
    if mut_t is not None:
        mut_t.known("env", "names")
        mutant_env = mut_t.get("env", str, "the environment variable that names the mutant")
        mutants = tuple(mut_t.strings("names") or ())
    spec = TargetSpec(file, name, None if broker == "none" else broker, roles, services, submit, read,
                      failpoints, mutant_env, mutants, options, timeouts,
                      bool(target.get("no_negative", bool, "true or false", False)))
    return TargetSpec(**{**spec.__dict__, "notices": _notices(spec), "images": images})


def _notices(spec: TargetSpec) -> tuple[str, ...]:
    """What a run must say: answers that may still commit, called failures."""
    out = []
    where = f"{spec.path.name} [submit]"
    if spec.submit.on_timeout is Outcome.FAIL:
        out.append(f"{where} on_timeout = \"fail\": a timed-out payment is recorded as failed; if it "
                   "commits later the checkers report a violation that may be a false alarm")
    if spec.submit.on_connection_error is Outcome.FAIL:
        out.append(f"{where} on_connection_error = \"fail\": a payment whose connection broke is recorded "
                   "as failed; if it commits the checkers report a violation that may be a false alarm")
    for rule in spec.submit.rules:
        five = sorted(s for s in rule.statuses if s >= 500)
        if five and rule.result is Outcome.FAIL:
            out.append(f"{where} maps HTTP {', '.join(map(str, five))} to fail: a payment answered so "
                       "that commits anyway is reported as a violation that may be a false alarm")
    return tuple(out)
