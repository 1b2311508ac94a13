"""What the configuration cannot check on its own, handed to the loader.

Some values of the configuration mean something only to a later stage: an Apprise URL to
delivery, a body template to its renderer, a digest's cron expression to its schedule, a
rule's terms, query and fields to matching. The configuration may not import those stages
(they import it), so the loader is given their checks as a StageChecks;
monitor.service.configuration builds the real one. Every check returns None when the value
is fine, else a message for people that never echoes a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Where in a rule a problem is ((), ("query",), ("any", 0), ...) and the message.
RuleProblemFound = tuple[tuple[str | int, ...], str]


@dataclass(frozen=True)
class StageChecks:
    # An Apprise URL (secrets substituted): None if Apprise accepts it.
    check_channel_url: Callable[[str], str | None]
    # A Jinja2 body template: None if it compiles and renders a sample alert and digest.
    check_template: Callable[[str], str | None]
    # A 5-field crontab expression (a rule's digest:), read as delivery reads it.
    check_cron: Callable[[str], str | None]
    # A rule's term as written (`word`, `"exact phrase"`, `sanction*`).
    check_term: Callable[[str], str | None]
    # A rule's query; a syntax error's message shows the query and a caret under the column.
    check_query: Callable[[str], str | None]
    # A field a rule names -> the article field it stands for; ValueError if none.
    field_name: Callable[[str], str]
    # A rule's any, all, none and query as written (None when absent, possibly invalid):
    # what makes it look for nothing (only none terms, a query that only excludes).
    rule_problems: Callable[[object, object, object, object], Sequence[RuleProblemFound]]
