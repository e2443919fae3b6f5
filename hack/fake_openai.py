"""A local OpenAI-compatible provider for ``make up``: the test suite's OpenAI stand-in
(``tests/standins/openai_api.py``, written from OpenAI's API reference, checking ``Authorization: Bearer``)
served by uvicorn on 127.0.0.1 (or ``--host``: ``make up`` uses the dev node's bridge address, which
pods reach inside the machine). It answers chat completions with ``You said: <last user message>``.

    MODELGATE_FAKE_OPENAI_KEY=sk-... python hack/fake_openai.py --port 18080

The key comes from the environment, not the command line, so it does not show in ``ps``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "MODELGATE_FAKE_OPENAI_KEY"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="an address of this machine (default 127.0.0.1)")
    args = parser.parse_args()
    key = os.environ.get(KEY_ENV)
    if not key:
        print(f"fake_openai: set {KEY_ENV}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    from tests.standins.openai_api import OpenAIStandIn

    uvicorn.run(OpenAIStandIn(api_key=key), host=args.host, port=args.port, log_level="warning", lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
