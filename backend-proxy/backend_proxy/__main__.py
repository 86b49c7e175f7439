"""``python -m backend_proxy`` is ``backend-proxy serve``."""

from __future__ import annotations

import sys

from backend_proxy.cli import main

sys.exit(main(sys.argv[1:] or ["serve"]))
