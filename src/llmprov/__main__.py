"""`python -m llmprov` runs the command line."""

import sys

from llmprov.cli.main import main

sys.exit(main())
