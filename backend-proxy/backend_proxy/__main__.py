"""``python -m backend_proxy [OPTIONS]`` is ``backend-proxy serve [OPTIONS]``.

An explicit command (``python -m backend_proxy serve``) or
``--help``/``--version`` is passed through unchanged.
"""

import sys

from backend_proxy.cli import main

_args = sys.argv[1:]
if not _args or (_args[0].startswith("-") and _args[0] not in ("-h", "--help", "--version")):
    _args = ["serve", *_args]
sys.exit(main(_args))
