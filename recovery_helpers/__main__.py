"""`python -m recovery_helpers`: the same as the `recovery` command."""

import sys

from .cli import main

sys.exit(main())
