"""The command line (layer 7): commands and exit codes."""

from monitor.cli.command_line import main

__all__ = ["main"]
