"""The search index: the tokens of every stored article (monitor.matching's article_tokens:
Latin words and CJK bigrams of the normalised text), and the candidates a query's tokens give.

SQLite: an FTS5 table that keeps no copy of the text (`content=''`) nor positions
(`detail=none`): the rule engine checks every candidate, so the index only has to say which
articles hold all of a term's tokens. Its `ascii` tokenizer takes our tokens as they are
(every non-ASCII character is part of a token, and ours hold only letters and digits).
Removing an article's tokens from such a table needs the tokens it was given, so they are
worked out again from the text stored, before the text changes.
PostgreSQL: a table of one tsvector per article (its tokens as lexemes, no parser involved)
under a GIN index.

Every unpruned article is in the index or in `search_pending` (or, stored by an older
version running beside this one, in neither until it is edited or the daemon next starts:
Store.queue_unindexed_articles). The transaction that
stores a new article, or an edit, adds it to `search_pending` (an edited one leaves the
index first); Store.index_pending moves pending articles into the index in batches, each a
short transaction of its own, on the daemon's housekeeping thread. Indexing costs about a
millisecond of CPU an article (tokens, and FTS5's or GIN's own work), as much again as
storing it: out of the storing transaction, a poll's write lock is not held for it, and a
first poll of a thousand feeds is not slowed by it. Searches read the index for what it
holds and the rule engine reads the pending articles in full, so an article is found from
the moment it is stored. A database made before the index, or whose tokens were made by
another version (`tokens_version`: the tokenizer, Unicode's and OpenCC's data), starts with
an empty index and every article pending.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Text, bindparam, func, text
from sqlalchemy.engine import Connection
from sqlmodel import Session, SQLModel, col, select

from monitor.matching import (
    INDEXED_FIELDS,
    AllOf,
    AllTokens,
    AnyOf,
    IndexQuery,
    article_tokens,
    tokens_version,
)
from monitor.store.engine import StoreBase, dialect_insert
from monitor.store.tables import ArticleRow, SearchIndexStateRow, SearchPendingRow, table_of

SEARCH_TABLE = "article_search"
# Articles indexed per transaction: a few hundred milliseconds of a writer's time, so that
# polls wait little for it.
INDEX_BATCH_ARTICLES = 200


def create_search_index(connection: Connection) -> None:
    """Create the index, empty, with every stored article pending."""
    if connection.dialect.name == "sqlite":
        connection.execute(
            text(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH_TABLE} USING fts5("
                "tokens, content='', detail='none', tokenize='ascii')"
            )
        )
    else:
        connection.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {SEARCH_TABLE} "
                "(article_id BIGINT PRIMARY KEY, tokens TSVECTOR NOT NULL)"
            )
        )
        # fastupdate off: entries go straight into the index. With it on, they wait in a
        # pending list that every search reads in full until VACUUM merges it; measured
        # after indexing 100,000 articles: a second a search, against 20 ms once merged.
        connection.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS ix_{SEARCH_TABLE}_tokens "
                f"ON {SEARCH_TABLE} USING gin (tokens) WITH (fastupdate = off)"
            )
        )
    SQLModel.metadata.create_all(
        connection, tables=[table_of(SearchIndexStateRow), table_of(SearchPendingRow)]
    )
    if connection.execute(select(SearchIndexStateRow.id)).first() is None:
        connection.execute(
            table_of(SearchIndexStateRow).insert().values(id=1, tokens_version=tokens_version())
        )
        _all_pending(connection)


def _all_pending(connection: Connection) -> None:
    """Mark every unpruned article pending (the index being empty)."""
    pending = table_of(SearchPendingRow)
    connection.execute(pending.delete())
    connection.execute(
        pending.insert().from_select(
            ["article_id"],
            select(ArticleRow.id).where(col(ArticleRow.pruned_at).is_(None)),
        )
    )


def _indexed_columns() -> list[Any]:
    """The article's columns the index holds the tokens of (matching.INDEXED_FIELDS)."""
    return [getattr(ArticleRow, field) for field in INDEXED_FIELDS]


def queue_for_index(session: Session, article_ids: Sequence[int]) -> None:
    """Mark these articles, just stored or edited, pending; call in the transaction that
    stores them (an edited one after remove_from_index)."""
    if not article_ids:
        return
    session.connection().execute(
        dialect_insert(session, table_of(SearchPendingRow)).on_conflict_do_nothing(
            index_elements=["article_id"]
        ),
        [{"article_id": article_id} for article_id in dict.fromkeys(article_ids)],
    )


def remove_from_index(session: Session, article_ids: Sequence[int]) -> None:
    """Take these articles out of the index and out of pending; call before their stored
    text changes (the SQLite index needs the tokens it was given, worked out from it)."""
    if not article_ids:
        return
    pending = table_of(SearchPendingRow)
    connection = session.connection()
    connection.execute(pending.delete().where(pending.c.article_id.in_(article_ids)))
    # Those the index holds: asked of the index itself (a contentless FTS5 table answers
    # rowid lookups), as an article may be in neither (stored by an older version beside
    # this one), and SQLite's index must never be told to remove what it does not hold.
    key = "rowid" if connection.dialect.name == "sqlite" else "article_id"
    indexed = list(
        connection.execute(
            text(f"SELECT {key} FROM {SEARCH_TABLE} WHERE {key} IN :ids").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"ids": list(dict.fromkeys(article_ids))},
        ).scalars()
    )
    if not indexed:
        return
    if connection.dialect.name != "sqlite":
        connection.execute(
            text(f"DELETE FROM {SEARCH_TABLE} WHERE article_id = ANY(:ids)").bindparams(
                bindparam("ids", type_=ARRAY(BigInteger))
            ),
            {"ids": indexed},
        )
        return
    rows = session.exec(
        select(ArticleRow.id, *_indexed_columns()).where(col(ArticleRow.id).in_(indexed))
    ).all()
    deletes = [
        {"article_id": article_id, "tokens": " ".join(tokens)}
        for article_id, *texts in rows
        if (tokens := article_tokens(texts))
    ]
    if deletes:
        connection.execute(
            text(
                f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, tokens) "
                "VALUES ('delete', :article_id, :tokens)"
            ),
            deletes,
        )


def _insert_tokens(connection: Connection, rows: list[dict[str, Any]]) -> None:
    rows = [row for row in rows if row["tokens"]]
    if not rows:
        return
    if connection.dialect.name == "sqlite":
        connection.execute(
            text(f"INSERT INTO {SEARCH_TABLE} (rowid, tokens) VALUES (:article_id, :tokens)"),
            [{"article_id": row["article_id"], "tokens": " ".join(row["tokens"])} for row in rows],
        )
    else:
        connection.execute(
            text(
                f"INSERT INTO {SEARCH_TABLE} (article_id, tokens) "
                "VALUES (:article_id, array_to_tsvector(:tokens)) "
                "ON CONFLICT (article_id) DO UPDATE SET tokens = excluded.tokens"
            ).bindparams(bindparam("tokens", type_=ARRAY(Text))),
            rows,
        )


def _match_expression(query: IndexQuery, *, sqlite: bool) -> str:
    """The query as FTS5 MATCH syntax (SQLite) or tsquery input (PostgreSQL). Tokens hold
    letters and digits only, so quoting them needs no escapes."""
    match query:
        case AllTokens(tokens=tokens, prefix=prefix):
            if sqlite:
                quoted = [f'"{token}"' for token in tokens]
                if prefix:
                    quoted[-1] += "*"
                return "(" + " AND ".join(quoted) + ")"
            quoted = [f"'{token}'" for token in tokens]
            if prefix:
                quoted[-1] += ":*"
            return "(" + " & ".join(quoted) + ")"
        case AllOf(children=children):
            joined = " AND " if sqlite else " & "
            return "(" + joined.join(_match_expression(c, sqlite=sqlite) for c in children) + ")"
        case AnyOf(children=children):
            joined = " OR " if sqlite else " | "
            return "(" + joined.join(_match_expression(c, sqlite=sqlite) for c in children) + ")"
    raise TypeError(f"not an index query: {query!r}")


class SearchQueries(StoreBase):
    """Store's search index: candidates for a query, and indexing pending articles."""

    def search_index_ready(self) -> bool:
        """Whether the index may be read: made by this version's tokens (else it is
        rebuilt by index_pending, and searches read every article)."""
        with self._reading() as session:
            row = session.exec(select(SearchIndexStateRow)).first()
            return row is not None and row.tokens_version == tokens_version()

    def search_candidates(
        self,
        query: IndexQuery,
        *,
        since: datetime | None,
        feed: str | None,
        below_id: int | None,
        limit: int,
    ) -> list[int]:
        """Given what the index is to be asked, return the ids of up to `limit` unpruned
        articles indexed under it, newest (greatest id) first: first seen since `since`,
        carried by `feed`, with an id below `below_id`, each when given. Pending articles
        are not among them (Store.pending_article_ids gives those)."""
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite:
            key, holds = "s.rowid", f"{SEARCH_TABLE} MATCH :match"
        else:
            key, holds = "s.article_id", "s.tokens @@ CAST(:match AS tsquery)"
        conditions = [holds, "a.pruned_at IS NULL"]
        parameters: dict[str, object] = {
            "match": _match_expression(query, sqlite=sqlite),
            "limit": limit,
        }
        if below_id is not None:
            conditions.append(f"{key} < :below_id")
            parameters["below_id"] = below_id
        if since is not None:
            conditions.append("a.first_seen_at >= :since")
            parameters["since"] = since
        if feed is not None:
            conditions.append(
                "EXISTS (SELECT 1 FROM feed_article f "
                "WHERE f.article_id = a.id AND f.feed_name = :feed)"
            )
            parameters["feed"] = feed
        statement = text(
            f"SELECT {key} FROM {SEARCH_TABLE} s JOIN article a ON a.id = {key} "
            f"WHERE {' AND '.join(conditions)} ORDER BY {key} DESC LIMIT :limit"
        )
        with self._reading() as session:
            return list(session.connection().execute(statement, parameters).scalars())

    def pending_article_ids(self, *, below_id: int | None, limit: int) -> list[int]:
        """The ids of up to `limit` articles the index does not hold yet, greatest first,
        below `below_id` when given."""
        pending = table_of(SearchPendingRow)
        statement = select(pending.c.article_id).order_by(pending.c.article_id.desc())
        if below_id is not None:
            statement = statement.where(pending.c.article_id < below_id)
        with self._reading() as session:
            return list(session.connection().execute(statement.limit(limit)).scalars())

    def articles_to_index(self) -> int:
        """How many stored articles the index does not hold yet."""
        with self._reading() as session:
            return session.exec(select(func.count()).select_from(SearchPendingRow)).one()

    def index_pending(self, *, batch_articles: int = INDEX_BATCH_ARTICLES) -> int:
        """Index a batch of pending articles, the newest first, in one transaction; return
        how many were indexed (0: none is pending). An index made by another version is
        emptied first, and every article made pending."""
        with self._writing() as session:
            connection = session.connection()
            state = session.exec(select(SearchIndexStateRow).with_for_update()).first()
            if state is None:
                return 0
            if state.tokens_version != tokens_version():
                _empty_index(connection)
                _all_pending(connection)
                state.tokens_version = tokens_version()
                session.add(state)
            pending = table_of(SearchPendingRow)
            batch = select(pending.c.article_id).order_by(pending.c.article_id.desc())
            if connection.dialect.name != "sqlite":
                # Several instances index at once: each takes pending rows none other has.
                batch = batch.with_for_update(skip_locked=True)
            article_ids = list(connection.execute(batch.limit(batch_articles)).scalars())
            if not article_ids:
                return 0
            rows = session.exec(
                select(ArticleRow.id, *_indexed_columns())
                .where(col(ArticleRow.id).in_(article_ids))
                .where(col(ArticleRow.pruned_at).is_(None))
            ).all()
            _insert_tokens(
                connection,
                [
                    {"article_id": article_id, "tokens": article_tokens(texts)}
                    for article_id, *texts in rows
                ],
            )
            connection.execute(pending.delete().where(pending.c.article_id.in_(article_ids)))
            return len(article_ids)

    def queue_unindexed_articles(self) -> int:
        """Mark pending the unpruned articles neither indexed nor pending (stored by an
        older version beside this one); return how many. One pass over the articles: for
        the daemon's start, not for every cycle."""
        key = "rowid" if self.engine.dialect.name == "sqlite" else "article_id"
        with self._writing() as session:
            result = session.connection().execute(
                text(
                    "INSERT INTO search_pending (article_id) SELECT a.id FROM article a "
                    "WHERE a.pruned_at IS NULL "
                    "AND a.id NOT IN (SELECT article_id FROM search_pending) "
                    f"AND a.id NOT IN (SELECT {key} FROM {SEARCH_TABLE}) "
                    "ON CONFLICT (article_id) DO NOTHING"  # (another instance, starting too)
                )
            )
            return result.rowcount

    def rebuild_search_index(self) -> None:
        """Empty the index and make every stored article pending (index_pending then
        rebuilds it): after rows were copied into this database, say."""
        with self._writing() as session:
            connection = session.connection()
            _empty_index(connection)
            _all_pending(connection)


def _empty_index(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.execute(
            text(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('delete-all')")
        )
    else:
        connection.execute(text(f"DELETE FROM {SEARCH_TABLE}"))
