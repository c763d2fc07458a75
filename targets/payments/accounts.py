"""Entry point: `python -m targets.payments.accounts --name accounts-a` (one per shard)."""

import sys

from targets.payments.participant import main

if __name__ == "__main__":
    sys.exit(main(None))
