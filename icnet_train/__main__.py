"""``python -m icnet_train``: the ``icnet-train`` command."""

import sys

from icnet_train.cli import main

sys.exit(main())
