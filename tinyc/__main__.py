"""`python3 -m tinyc`: the `tinyc` command."""
import sys

from .cli import main

sys.exit(main())
