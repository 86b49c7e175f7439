"""``python -m training_host [OPTIONS]`` is ``training-host serve [OPTIONS]``.

An explicit command (``python -m training_host serve``, ``install-service``) or
``--help``/``--version`` is passed through unchanged.
"""

import sys

from training_host.cli import main

_args = sys.argv[1:]
if not _args or (_args[0].startswith("-") and _args[0] not in ("-h", "--help", "--version")):
    _args = ["serve", *_args]
sys.exit(main(_args))
