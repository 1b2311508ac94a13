"""Stories: which stored articles report the same news (layer 3).

An article's fingerprint (measure.py) is computed from its title, summary and content
folded to one script and one vocabulary; the store keeps each article's signature and band
keys, finds candidates that share a band key, and asks this package how similar they are.
Other packages use what this module exports.
"""

from monitor.stories.measure import (
    DEFAULT_SIMILARITY,
    StoryFingerprint,
    fingerprint,
    similarity,
)

__all__ = ["DEFAULT_SIMILARITY", "StoryFingerprint", "fingerprint", "similarity"]
