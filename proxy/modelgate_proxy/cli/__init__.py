"""``modelgate``, the proxy's command: one module per subcommand.

- ``modelgate serve`` (:mod:`.serve`): run the proxy for ServingEndpoint manifests (loaded by :mod:`.manifests`);
- ``modelgate convert`` (:mod:`.convert`): convert a Databricks endpoint definition to a manifest, and back;
- ``modelgate api-key create`` (:mod:`.api_key`): mint an API key (the Secret manifest, the key shown once).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .api_key import add_api_key_parser
from .convert import add_convert_parser
from .serve import add_serve_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelgate", description="modelgate LLM gateway proxy")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(sub)
    add_convert_parser(sub)
    add_api_key_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
