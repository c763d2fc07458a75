"""Mask secrets in everything the report writes.

Reports are shared widely (CI artifacts, chat links), while run metadata carries
broker URLs with passwords and admin tokens: every string bound for Allure goes
through `mask` first.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["mask", "mask_obj", "MASK"]

MASK = "****"

# user:password@ in any URL (amqp://guest:guest@127.0.0.1, nats://u:p@host, http://...)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
# key=value or "key": "value" where the key names a secret
_SECRET_KEYS = r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth|credentials?)"
_KEY_VALUE = re.compile(
    r"(?P<key>[\"']?[\w.\-]*" + _SECRET_KEYS + r"[\w.\-]*[\"']?\s*[:=]\s*)(?P<q>[\"']?)(?!(?:Bearer|Basic)\s)(?!\*\*\*\*)(?P<val>[^\s\"',;&}]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<key>\b(?:Bearer|Basic)\s+)(?P<val>[A-Za-z0-9._~+/=\-]{6,})")


def mask(text: str) -> str:
    """`text` with URL passwords, secret-named values and bearer tokens replaced by ****."""
    if not text:
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m['key']}{MASK}", text)
    return _KEY_VALUE.sub(lambda m: f"{m['key']}{m['q']}{MASK}", text)


def _secret_key(key: str) -> bool:
    return re.fullmatch(r"[\w.\-]*" + _SECRET_KEYS + r"[\w.\-]*", key, re.IGNORECASE) is not None


def mask_obj(value: Any) -> Any:
    """A copy of a JSON-like value with secrets masked: secret-named keys lose their values."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and _secret_key(k) and v not in (None, "")
                    else mask_obj(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_obj(v) for v in value]
    return value
