"""``python -m training_host`` is ``training-host serve``."""

import sys

from training_host.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
