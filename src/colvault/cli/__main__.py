"""``python -m colvault.cli``: the ``colvault`` command."""

import sys

from . import main

sys.exit(main())
