"""`python -m pipeless.bench`: the same as `pipeless-orch bench`."""

import sys

from pipeless.bench.cli import main

sys.exit(main())
