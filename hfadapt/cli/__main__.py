"""``python -m hfadapt.cli``: the ``hfadapt`` command."""

import sys

from .main import main

sys.exit(main())
