"""``python -m modelgate_proxy`` is the ``modelgate`` command."""

import sys

from .cli import main

sys.exit(main())
