"""``python -m training_engine``: the same as the ``training-engine`` command."""

import sys

from training_engine.cli import main

sys.exit(main())
