"""``python3 -m anycast_tui``: the same as the ``anycast-tui`` command."""

import sys

from anycast_tui.cli import main

sys.exit(main())
