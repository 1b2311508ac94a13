"""Service: the daemon, refresh_feed (where the stages meet), http, and loading the
configuration with every stage's checks.

What other packages use of it is exported here.
"""

from monitor.service.configuration import load_config, load_database_settings

__all__ = ["load_config", "load_database_settings"]
