"""`python -m mailmark` is the `mailmark` command."""

import sys

from mailmark.cli import main

sys.exit(main())
