"""This daemon's name among the instances on its database (see monitor.store.instances)."""

from __future__ import annotations

from monitor.store import instance_name

__all__ = ["instance_name"]
