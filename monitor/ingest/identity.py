"""Which stored article, if any, each item of a feed document is: the identity rule.

An item is the same article as one already stored if
- the same feed gave the same non-empty guid before (an edit, even if the link changed), or
- any feed gave the same canonical link (the same article seen in two feeds), unless the
  same feed gave the two items different non-empty guids (two posts of a live blog that
  share a page are two articles, whatever their links);
- without guid and link: the same feed gave the same title and published time.
Otherwise it is new. A canonical link keeps its fragment (see parse.canonical_link), so two
items of one feed without guids are one article only when their links are the same,
fragment included.

Each rule is a key (see item_keys) in the store's article_key table, whose primary key
makes the database enforce it; the store looks the keys up and writes what assign()
decides. "The same feed gave the article a guid" is recorded per feed and article
(feed_article.guid_given).

Upgrading. Stores written before fragments counted hold link keys of links without their
fragment, no guid_given, and posts of one page merged into one article (the first one
stored, its text overwritten by the others'). None of it may alert again: old articles
keep the keys they have, new items get the new ones.
- An item whose link key is unknown is also looked up by its link without the fragment
  (`legacy_link`). The article found is the item if its stored link, read as a canonical
  link today, is the item's. Otherwise an item with a guid is a new article (the store
  has every guid key its feed ever gave, so this guid is new to the feed).
- A feed's first poll since (an UpgradePoll; the pipeline parses that document whole)
  takes apart what the old identity merged: an item of the feed whose link differs only
  by its fragment from its article's, found by its guid, or found without guid by its
  link without the fragment and held byte for byte by the feed's last document (the
  digests known_items keeps), becomes an article of its own, recorded as seen before (it
  never alerts, as a baseline) and not counted as new; its keys go with it. A post that
  the last document did not hold is new. Where that document is not known (it did not
  split into items, or the feed's URL changed), a post without guid found that way is
  taken as seen before, as the old identity took it. After that poll the feed's articles
  have their own keys and guid_given.
- Titles feedparser marks as plain text were read as HTML then: an item without guid and
  link whose title that changes is also looked up by the fallback key it had then. The
  store updates the text of such articles at that poll without running rules on it again
  (see StoreTransaction.upsert_articles): only the reading changed, not the article.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from monitor.ingest.parse import canonical_link, link_without_fragment
from monitor.model import Article

# The identity the keys of a feed's items follow. 1 (stored as NULL): links without their
# fragment, no guid_given. 2: as described above.
IDENTITY_VERSION = 2


def _key(*parts: str) -> str:
    # sha256 of "guid\0<feed>\0<guid>", "link\0<canonical link>" or "hash\0<feed>\0<key>":
    # fixed length whatever the URL, and one namespace for all three kinds.
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ItemKeys:
    """The identity keys of one item of a feed."""

    guid: str | None  # its guid, within its feed
    link: str | None  # its canonical link, across feeds
    fallback: str | None  # title and published time, within its feed: neither of the above
    # The link key as stores made before fragments counted have it (only for a link with a
    # fragment, where it differs): looked up, never stored.
    legacy_link: str | None
    canonical_link: str | None
    # The fallback key as stores made before plain-text titles were kept as written have
    # it (only where it differs): looked up, never stored.
    legacy_fallback: str | None = None

    def stored(self) -> tuple[str, ...]:
        """The keys the item's article is stored under, strongest first."""
        return tuple(key for key in (self.guid, self.link, self.fallback) if key is not None)


def item_keys(feed_name: str, article: Article) -> ItemKeys:
    """Given an item of a feed, return its identity keys."""
    canonical = article.canonical_link
    legacy = None
    if canonical and "#" in canonical:
        legacy = _key("link", link_without_fragment(canonical))
    by_fallback = not article.guid and not canonical
    return ItemKeys(
        guid=_key("guid", feed_name, article.guid) if article.guid else None,
        link=_key("link", canonical) if canonical else None,
        fallback=_key("hash", feed_name, article.fallback_key) if by_fallback else None,
        legacy_link=legacy,
        canonical_link=canonical,
        legacy_fallback=(
            _key("hash", feed_name, article.legacy_fallback_key)
            if by_fallback and article.legacy_fallback_key
            else None
        ),
    )


@dataclass(frozen=True, slots=True)
class Stored:
    """An article already in the store."""

    article_id: int


@dataclass(frozen=True, slots=True)
class New:
    """An article new to the store: the index-th of Assignment.new_items."""

    index: int


Target = Stored | New


@dataclass(frozen=True)
class UpgradePoll:
    """A feed's first poll since its items were stored under an earlier identity."""

    # The items (by index) that the feed's last stored document held byte for byte, or
    # None where that is not known.
    unchanged_items: frozenset[int] | None = None

    def held_before(self, index: int) -> bool:
        """Whether the index-th item may have been in the feed's last document."""
        return self.unchanged_items is None or index in self.unchanged_items


@dataclass(frozen=True)
class StoredFacts:
    """What the store holds about an item list's keys, for one feed."""

    known: Mapping[str, int]  # identity key -> article id, for every key looked up
    # Articles this feed carried, among facts_needed's: did it give them a guid? None: not
    # recorded (stored before guid_given was).
    carried: Mapping[int, bool | None] = field(default_factory=dict)
    links: Mapping[int, str | None] = field(default_factory=dict)  # stored link, by id


@dataclass(frozen=True)
class Assignment:
    """assign()'s answer for one feed document."""

    targets: tuple[Target, ...]  # one per item
    new_items: tuple[int, ...]  # the item that makes each new article, by item index
    # New articles (New.index) that the feed carried before, merged into another one by
    # the old identity: stored as seen before, never alerting, not counted as new.
    seen_before: frozenset[int]
    keys: dict[str, Target]  # keys to store (none of them known yet)
    moved_keys: dict[str, Target]  # known keys that now belong to another article
    guided: frozenset[Target]  # articles this feed gave a guid in this document
    # Stored articles this feed carried before and now gave a guid, where the store does
    # not record that yet.
    newly_guided: frozenset[int]


def lookup_keys(items: Sequence[ItemKeys]) -> set[str]:
    """Every key to look up for these items."""
    keys: set[str] = set()
    for item in items:
        keys.update(item.stored())
        if item.legacy_link is not None:
            keys.add(item.legacy_link)
        if item.legacy_fallback is not None:
            keys.add(item.legacy_fallback)
    return keys


def facts_needed(
    items: Sequence[ItemKeys], known: Mapping[str, int], *, upgrade: UpgradePoll | None
) -> tuple[set[int], set[int]]:
    """Given items and which of their keys are known, return the article ids whose feed
    facts (carried, guid given) and whose stored links assign() needs. Both are usually
    empty: an item known by its guid, or new by every key, needs neither."""
    carried: set[int] = set()
    links: set[int] = set()
    for item in items:
        if item.guid is not None and item.guid in known:
            if upgrade is not None and item.canonical_link is not None:
                links.add(known[item.guid])
        elif item.link is not None and item.link in known:
            if item.guid is not None:
                carried.add(known[item.link])
        elif item.legacy_link is not None and item.legacy_link in known:
            article_id = known[item.legacy_link]
            carried.add(article_id)
            links.add(article_id)
    return carried, links


def assign(
    items: Sequence[ItemKeys], facts: StoredFacts, *, upgrade: UpgradePoll | None
) -> Assignment:
    """Given the keys of a feed document's items, in document order, and what the store
    holds, return which article each item is and what to store. `upgrade`: this is the
    feed's first poll since its items were stored under an earlier identity (see the
    module's comment)."""
    assigner = _Assigner(facts, upgrade=upgrade)
    targets = tuple(assigner.add(item, index) for index, item in enumerate(items))
    return Assignment(
        targets=targets,
        new_items=tuple(assigner.new_items),
        seen_before=frozenset(assigner.seen_before),
        keys=assigner.batch,
        moved_keys=assigner.moved,
        guided=frozenset(assigner.guided),
        newly_guided=frozenset(assigner.newly_guided),
    )


class _Assigner:
    """assign()'s state while it goes through one document's items."""

    def __init__(self, facts: StoredFacts, *, upgrade: UpgradePoll | None) -> None:
        self.facts = facts
        self.known = facts.known
        self.upgrade = upgrade
        # Keys of items decided so far that the store does not know yet: two items of one
        # document with such a key in common are one article, as if stored one by one.
        self.batch: dict[str, Target] = {}
        self.moved: dict[str, Target] = {}
        self.guided: set[Target] = set()
        self.newly_guided: set[int] = set()
        self.new_items: list[int] = []
        self.seen_before: set[int] = set()

    def add(self, item: ItemKeys, index: int) -> Target:
        """Decide which article the index-th item is, and note what to store for it."""
        target = self.find(item.guid)
        by_guid = target is not None
        if isinstance(target, Stored) and self.merged_by_old_identity(item, target):
            target = self.take_apart(item, index)
        elif target is None and item.link is not None:
            target = self.same_link(item, index)
        elif target is None:
            # The same title and time from this feed; as read before plain-text titles
            # were kept as written, for an item stored then.
            target = self.find(item.fallback) or self.find_stored(item.legacy_fallback)
        if target is None:
            target = self.new(index)
        if item.guid is not None:
            self.guided.add(target)
            if isinstance(target, Stored) and _needs_guid_recorded(
                self.facts.carried,
                target.article_id,
                by_guid=by_guid,
                upgrading=self.upgrade is not None,
            ):
                self.newly_guided.add(target.article_id)
        for key in item.stored():
            if key not in self.known:
                self.batch.setdefault(key, target)
        return target

    def find(self, key: str | None) -> Target | None:
        if key is None:
            return None
        if key in self.moved:
            return self.moved[key]
        if key in self.known:
            return Stored(self.known[key])
        return self.batch.get(key)

    def find_stored(self, key: str | None) -> Stored | None:
        """The stored article of a key looked up but never stored (a legacy key)."""
        return Stored(self.known[key]) if key is not None and key in self.known else None

    def same_link(self, item: ItemKeys, index: int) -> Target | None:
        """The article with the item's link, unless this feed gave it another guid."""
        target = self.find(item.link)
        legacy = item.legacy_link
        if target is None and legacy is not None and legacy in self.known:
            article_id = self.known[legacy]
            if self.stored_link(article_id) == item.canonical_link:
                target = Stored(article_id)
            elif (
                self.upgrade is not None
                and item.guid is None
                and article_id in self.facts.carried  # an article of this feed
                and self.upgrade.held_before(index)
            ):
                return self.take_apart(item, index)
        if target is not None and item.guid is not None and self.is_guided(target):
            return None  # another guid of this feed: another article
        return target

    def merged_by_old_identity(self, item: ItemKeys, target: Stored) -> bool:
        """Found by its guid at the feed's first poll since, an item whose link differs
        from its article's only by the fragment: the old identity merged the two."""
        if self.upgrade is None or item.canonical_link is None:
            return False
        stored = self.stored_link(target.article_id)
        return (
            stored is not None
            and stored != item.canonical_link
            and link_without_fragment(stored) == link_without_fragment(item.canonical_link)
        )

    def take_apart(self, item: ItemKeys, index: int) -> New:
        """A new article for an item the old identity merged into another: seen before."""
        target = self.new(index)
        self.seen_before.add(target.index)
        if item.guid is not None and item.guid in self.known:
            self.moved[item.guid] = target
        return target

    def new(self, index: int) -> New:
        self.new_items.append(index)
        return New(len(self.new_items) - 1)

    def stored_link(self, article_id: int) -> str | None:
        """The stored article's link, as a canonical link today (None if not looked up)."""
        link = self.facts.links.get(article_id)
        return canonical_link(link) if link else None

    def is_guided(self, target: Target) -> bool:
        if target in self.guided:
            return True
        return isinstance(target, Stored) and self.facts.carried.get(target.article_id) is True


def _needs_guid_recorded(
    carried: Mapping[int, bool | None], article_id: int, *, by_guid: bool, upgrading: bool
) -> bool:
    """Whether a stored article this feed gave a guid lacks guid_given = true."""
    if by_guid:
        # Its guid key proves this feed carried it with a guid, and stored it so since
        # guid_given exists: only a store from before needs it recorded, at its first poll.
        return upgrading
    # Found by its link: a feed that never carried it gets a new row that says so;
    # one that carried it without a guid has the row and needs it changed.
    return carried.get(article_id, True) is not True
