"""Configuration of one service, from environment variables overridden by CLI flags.

Every service of the payment system reads the same variables, so an adapter
can start them all from one environment and give each its own port, store and
broker URL (the broker URL is that service's own proxy).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from targets.payments.mutants import Hooks, hooks_for

PARTICIPANTS_FIXED = ("ledger", "notifications")
DELIVERIES = {
    "resend": "re-send every message until it is answered: a message the broker loses costs time",
    "broker": "trust the broker's acknowledgement: a decision is sent until the broker holds it, "
              "then forgotten; a participant in doubt waits for it instead of asking",
}


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Config:
    name: str
    http_port: int
    broker_url: str
    data_dir: Path
    accounts: dict[str, int]
    shards: tuple[str, ...] = ("accounts-a", "accounts-b")
    namespace: str = "txchaos"
    vote_timeout: float = 5.0
    reply_timeout: float = 8.0
    resend_interval: float = 2.0
    indoubt_timeout: float = 6.0
    delivery: str = "resend"
    failpoints: str = ""
    mutant: str | None = None
    test_mode: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def hooks(self) -> Hooks:
        """Where the mutant (if any) departs from the correct protocol."""
        return hooks_for(self.mutant)

    @property
    def trusts_broker(self) -> bool:
        """delivery=broker, or the mutant that runs that delivery on a broker without durability."""
        return self.delivery == "broker" or self.hooks.broker_non_durable

    @property
    def db_path(self) -> Path:
        return self.data_dir / f"{self.name}.sqlite"

    def inbox(self, service: str) -> str:
        """The broker-side name of a service's inbox, namespaced per target instance."""
        return f"{self.namespace}_{service}"

    def shard_of(self, account: str) -> str:
        """Accounts alternate over the shards in sorted order, so neighbours differ."""
        ordered = sorted(self.accounts)
        return self.shards[ordered.index(account) % len(self.shards)]

    def shard_accounts(self, shard: str) -> dict[str, int]:
        return {a: b for a, b in self.accounts.items() if self.shard_of(a) == shard}

    def participants_of(self, source: str, dest: str) -> list[str]:
        shards = sorted({self.shard_of(source), self.shard_of(dest)})
        return shards + list(PARTICIPANTS_FIXED)


def _env_float(env: dict[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a number of seconds") from None


def load(argv: list[str] | None = None, *, default_name: str | None = None) -> Config:
    """Read the environment, then let CLI flags override it."""
    env = dict(os.environ)
    p = argparse.ArgumentParser(description="a service of the txchaos reference payment system")
    p.add_argument("--name", default=env.get("TXCHAOS_SERVICE", default_name))
    p.add_argument("--port", type=int, default=int(env.get("TXCHAOS_HTTP_PORT", "0") or 0))
    p.add_argument("--broker", default=env.get("TXCHAOS_BROKER_URL"))
    p.add_argument("--data-dir", default=env.get("TXCHAOS_DATA_DIR"))
    args = p.parse_args(argv)
    missing = [flag for flag, v in (("--name/TXCHAOS_SERVICE", args.name),
                                    ("--broker/TXCHAOS_BROKER_URL", args.broker),
                                    ("--data-dir/TXCHAOS_DATA_DIR", args.data_dir)) if not v]
    if missing:
        raise ConfigError(f"missing setting(s): {', '.join(missing)}")
    if not args.port:
        raise ConfigError("missing setting --port/TXCHAOS_HTTP_PORT")
    try:
        accounts = json.loads(env.get("TXCHAOS_ACCOUNTS", "{}"))
        if not isinstance(accounts, dict) or not all(
                isinstance(k, str) and isinstance(v, int) for k, v in accounts.items()):
            raise ValueError
    except ValueError:
        raise ConfigError("TXCHAOS_ACCOUNTS must be a JSON object {account: integer balance}") from None
    if not accounts:
        raise ConfigError("TXCHAOS_ACCOUNTS names no accounts")
    shards = tuple(s for s in env.get("TXCHAOS_SHARDS", "accounts-a,accounts-b").split(",") if s)
    namespace = env.get("TXCHAOS_NAMESPACE", "txchaos")
    if not re.fullmatch(r"[A-Za-z0-9-]+", namespace):
        raise ConfigError(f"TXCHAOS_NAMESPACE={namespace!r}: use letters, digits and '-' only")
    delivery = env.get("TXCHAOS_DELIVERY") or "resend"
    if delivery not in DELIVERIES:
        raise ConfigError(f"TXCHAOS_DELIVERY={delivery!r}: choose one of {', '.join(DELIVERIES)}")
    return Config(
        name=args.name,
        http_port=args.port,
        broker_url=args.broker,
        data_dir=Path(args.data_dir),
        accounts=accounts,
        shards=shards,
        namespace=namespace,
        vote_timeout=_env_float(env, "TXCHAOS_VOTE_TIMEOUT", 5.0),
        reply_timeout=_env_float(env, "TXCHAOS_REPLY_TIMEOUT", 8.0),
        resend_interval=_env_float(env, "TXCHAOS_RESEND_INTERVAL", 2.0),
        indoubt_timeout=_env_float(env, "TXCHAOS_INDOUBT_TIMEOUT", 6.0),
        delivery=delivery,
        failpoints=env.get("TXCHAOS_FAILPOINTS", ""),
        mutant=env.get("TXCHAOS_MUTANT") or None,
        test_mode=env.get("TXCHAOS_TEST_MODE", "") == "1",
    )
