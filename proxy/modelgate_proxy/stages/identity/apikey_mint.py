"""Minting an API key: a new random key and the Secret manifest that holds only its hash.

The key is shown once, to whoever mints it; the manifest is what gets applied. As a command (until the
``modelgate`` CLI grows an ``api-key`` subcommand)::

    python -m modelgate_proxy.stages.identity.apikey_mint -n team-a --principal alice@example.com --group data-scientists \\
        | kubectl apply -f -

prints the manifest on stdout and the key on stderr (once; it is not recoverable from the Secret).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from .apikey_files import record_from_secret
from .apikeys import LABEL, PREFIX, SECRET_TYPE, hash_key


@dataclass(frozen=True, slots=True)
class MintedKey:
    key: str
    """The API key itself: show it once, store it nowhere."""
    key_id: str
    manifest: dict[str, Any]
    """The Secret to apply (holds the key's SHA-256, never the key)."""


def new_key() -> tuple[str, str]:
    """``(key, key_id)`` with 256 random bits from :mod:`secrets`."""
    key_id = secrets.token_hex(6)
    return f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}", key_id  # 32 bytes are always 43 characters


def mint(
    principal: str,
    *,
    namespace: str | None = None,
    kind: str = "user",
    groups: Sequence[str] = (),
    expires: datetime | None = None,
) -> MintedKey:
    key, key_id = new_key()
    data = {"id": key_id, "sha256": hash_key(key).hex(), "principal": principal, "kind": kind}
    if groups:
        data["groups"] = ",".join(groups)
    if expires is not None:
        if expires.tzinfo is None:
            raise ValueError("expires needs a time zone")
        data["expires"] = expires.isoformat().replace("+00:00", "Z")
    metadata: dict[str, Any] = {"name": f"modelgate-api-key-{key_id}", "labels": {LABEL: "true"}}
    if namespace:
        metadata["namespace"] = namespace
    manifest = {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE, "metadata": metadata, "stringData": data}
    record_from_secret(manifest)  # refuses what the proxy would refuse (reserved names, bad kind), before printing
    return MintedKey(key, key_id, manifest)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m modelgate_proxy.stages.identity.apikey_mint", description=__doc__.split("\n")[0])
    p.add_argument("-n", "--namespace", default=None, help="the endpoint's namespace (the Secret's)")
    p.add_argument("--principal", required=True, help="the user name or service principal id the key stands for")
    p.add_argument("--service-principal", action="store_true", help="the key is a service principal's")
    p.add_argument("--group", action="append", default=[], help="a group of the principal (repeatable)")
    p.add_argument("--expires", type=datetime.fromisoformat, default=None, help="RFC 3339 expiry, e.g. 2027-01-31T00:00:00+00:00")
    args = p.parse_args(argv)
    try:
        minted = mint(args.principal, namespace=args.namespace, groups=args.group, expires=args.expires,
                      kind="service_principal" if args.service_principal else "user")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump(minted.manifest, sort_keys=False))
    print(f"API key (shown once, store it now): {minted.key}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
