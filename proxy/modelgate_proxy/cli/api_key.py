"""``modelgate api-key create``: mint an API key (:func:`~..stages.identity.apikey_mint.mint`).

    modelgate api-key create --principal alice@example.com [-n NAMESPACE] [--group G]... [--service-principal]
                             [--expires 2027-01-31T00:00:00+00:00] [--write DIR]

prints the Secret manifest (the key's SHA-256, never the key) on standard output, for ``kubectl apply -f -``, and
the key once on standard error: it cannot be recovered from the manifest. With ``--write DIR`` the manifest goes
into ``DIR/modelgate-api-key-<id>.yaml`` instead (written whole, then renamed into place), the file format
``modelgate serve --api-keys DIR`` reads; deleting that file revokes the key.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ..stages.identity.apikey_mint import MintedKey, mint


def add_api_key_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``api-key`` (with its ``create`` subcommand) on the ``modelgate`` command's subparsers."""
    api_key: argparse.ArgumentParser = sub.add_parser("api-key", help="mint API keys", description=__doc__,
                                                      formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = api_key.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="mint a key: the Secret manifest on stdout, the key once on stderr")
    create.add_argument("-n", "--namespace", default=None, help="the endpoint's namespace (the Secret's)")
    create.add_argument("--principal", required=True, help="the user name or service principal id the key stands for")
    create.add_argument("--service-principal", action="store_true", help="the key is a service principal's")
    create.add_argument("--group", action="append", default=[], help="a group of the principal (repeatable)")
    create.add_argument("--expires", type=datetime.fromisoformat, default=None,
                        help="RFC 3339 expiry with a zone, e.g. 2027-01-31T00:00:00+00:00")
    create.add_argument("--write", default=None, metavar="DIR",
                        help="write the manifest into DIR (for `modelgate serve --api-keys DIR`) instead of stdout")
    create.set_defaults(func=_create)
    return api_key


def _create(args: argparse.Namespace) -> int:
    try:
        minted = mint(args.principal, namespace=args.namespace, groups=args.group, expires=args.expires,
                      kind="service_principal" if args.service_principal else "user")
    except ValueError as e:
        print(f"modelgate: {e}", file=sys.stderr)
        return 2
    if args.write is None:
        sys.stdout.write(yaml.safe_dump(minted.manifest, sort_keys=False))
    else:
        try:
            path = write_record(minted, Path(args.write))
        except OSError as e:
            print(f"modelgate: --write {args.write}: {e.strerror}", file=sys.stderr)
            return 2
        print(f"wrote {path}", file=sys.stderr)
    print(f"API key (shown once, store it now): {minted.key}", file=sys.stderr)
    return 0


def write_record(minted: MintedKey, directory: Path) -> Path:
    """Write ``minted``'s manifest as ``directory/modelgate-api-key-<id>.yaml``: whole into a hidden temporary
    file first (the reloader reads only ``*.yaml``/``*.yml``/``*.json``), then renamed, so a reload never sees
    half a record."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{minted.manifest['metadata']['name']}.yaml"
    tmp = directory / f".{name}.tmp"
    tmp.write_text(yaml.safe_dump(minted.manifest, sort_keys=False))
    os.replace(tmp, directory / name)
    return directory / name
