"""``python -m apisec``: the same as the ``apisec`` command."""

from __future__ import annotations

import sys

from apisec.cli import main

if __name__ == "__main__":
    sys.exit(main())
