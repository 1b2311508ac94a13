"""`python -m monitor` and the `news-monitor` script: the command line in a process of its own."""

import gc
import sys


def main() -> int:
    """Run the command line as this process's one job (see monitor.cli.main.main's own_process)."""
    # Start-up makes a few hundred thousand objects that live as long as the process and
    # almost no garbage, yet the cyclic collector would walk them all again and again
    # while the modules import (about 80 ms). cli.main turns it back on after start-up.
    gc.disable()
    from monitor.cli.main import main as command_line

    return command_line(own_process=True)


if __name__ == "__main__":
    sys.exit(main())
