"""Write (or check) every copy of the CRDs in the repository, from the spec models. Dev tool: ``make crd``.

    python -m modelgate_dev.crdgen            # writes crds/, charts/modelgate/crds/ and charts/.../templates/crds/
    python -m modelgate_dev.crdgen --check    # exits 1 when a checked-in copy is stale (hack/test.sh)
    python -m modelgate_dev.crdgen --out PATH # writes only the ServingEndpoint CRD, to PATH

The CRD itself is built by :mod:`modelgate_operator.crd` (pure); this module only knows where the copies live.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelgate_operator import crd

from .chartcrds import REPO_ROOT, outputs

DEFAULT_PATH = REPO_ROOT / "crds" / crd.CRD_FILENAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelgate_dev.crdgen", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="where to write the CRD")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs from the models")
    args = parser.parse_args(argv)
    text = crd.render()
    files = {args.out: text}
    if args.out == DEFAULT_PATH:  # the default run also keeps the chart's and the kopf peering CRDs in step
        files = {**outputs(), args.out: text}
    if args.check:
        stale = [p for p, t in files.items() if (p.read_text() if p.exists() else "") != t]
        for path in stale:
            print(f"{path} is stale: run `make crd`", file=sys.stderr)
        return 1 if stale else 0
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
