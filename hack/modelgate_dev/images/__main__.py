"""``python -m modelgate_dev.images``: build (what is missing) and, given a containerd socket, load the images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .build import ensure_built, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelgate_dev.images", description=__doc__)
    parser.add_argument("--containerd", type=Path, help="load the images into the containerd on this socket")
    args = parser.parse_args(argv)
    images = ensure_built()
    for im in images.values():
        print(f"{im.name}\t{im.ref}\t{im.archive}")
    if args.containerd:
        load(images, args.containerd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
