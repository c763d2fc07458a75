"""Entry point: `python -m targets.payments.notifications`; the state machine is in participant.py."""

import sys

from targets.payments.participant import main

if __name__ == "__main__":
    sys.exit(main("notifications"))
