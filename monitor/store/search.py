"""The search index: the tokens of every stored article (monitor.matching's article_tokens:
Latin words and CJK bigrams of the normalised text), kept in the transaction that stores,
edits or prunes the article, and the candidates a query's tokens give.

SQLite: an FTS5 table that keeps no copy of the text (`content=''`) nor positions
(`detail=none`): the rule engine checks every candidate, so the index only has to say which
articles hold all of a term's tokens. Its `ascii` tokenizer takes our tokens as they are
(every non-ASCII character is part of a token, and ours hold only letters and digits).
Removing an article's tokens from such a table needs the tokens it was given, so they are
worked out again from the text stored, before the text changes.
PostgreSQL: a table of one tsvector per article (its tokens as lexemes, no parser involved)
under a GIN index.

`search_index_state` says which articles the index holds: those with an id from
`indexed_from_id` on. A database made before the index, or one whose tokens were made by
another version (`tokens_version`: the tokenizer, Unicode's and OpenCC's data), starts with
an empty index and every stored article still to index: Store.index_backlog fills it in
batches from the newest down, each batch a short transaction, while the daemon runs.
Searches read what is indexed from the index and scan the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Text, bindparam, func, text
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from monitor.matching import (
    INDEXED_FIELDS,
    AllOf,
    AllTokens,
    AnyOf,
    IndexQuery,
    article_tokens,
    tokens_version,
)
from monitor.model import Article
from monitor.store.engine import StoreBase
from monitor.store.tables import ArticleRow, FeedArticleRow, SearchIndexStateRow, table_of

SEARCH_TABLE = "article_search"
# Articles indexed per transaction while the index is built: a few hundred milliseconds of
# a writer's time, so that pollers wait little for it.
INDEX_BATCH_ARTICLES = 200


@dataclass(frozen=True)
class IndexState:
    tokens_version: str  # what made the tokens in the index
    indexed_from_id: int  # the index holds the articles with this id or a greater one

    @property
    def current(self) -> bool:
        """Whether this version's queries may read the index."""
        return self.tokens_version == tokens_version()


@dataclass(frozen=True)
class IndexProgress:
    articles_to_index: int  # stored, unpruned articles the index does not hold yet
    indexed_from_id: int


def create_search_index(connection: Connection) -> None:
    """Create the index and its state (every stored article still to index)."""
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
        connection.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS ix_{SEARCH_TABLE}_tokens "
                f"ON {SEARCH_TABLE} USING gin (tokens)"
            )
        )
    SearchIndexStateRow.metadata.create_all(connection, tables=[table_of(SearchIndexStateRow)])
    if connection.execute(select(SearchIndexStateRow.id)).first() is None:
        connection.execute(
            table_of(SearchIndexStateRow).insert().values(id=1, **_reset_values(connection)),
        )


def _reset_values(connection: Connection) -> dict[str, object]:
    """The state of an empty index over every article stored so far."""
    last_id = connection.execute(select(func.max(ArticleRow.id))).scalar_one_or_none() or 0
    return {"tokens_version": tokens_version(), "indexed_from_id": last_id + 1}


def read_index_state(session: Session) -> IndexState | None:
    row = session.exec(select(SearchIndexStateRow)).first()
    if row is None:
        return None  # (a database before the index's migration step: a read-only store)
    return IndexState(row.tokens_version, row.indexed_from_id)


def _texts(article: Article) -> list[str]:
    return [getattr(article, field) for field in INDEXED_FIELDS]


def add_to_index(session: Session, articles: Sequence[tuple[int, Article]]) -> None:
    """Index these (id, article) as stored now, those the index is to hold; call in the
    transaction that stores them, after remove_from_index for an article indexed before."""
    state = read_index_state(session)
    if state is None or not state.current:
        return  # the index belongs to another version until it is rebuilt
    rows = [
        {"article_id": article_id, "tokens": article_tokens(_texts(article))}
        for article_id, article in articles
        if article_id >= state.indexed_from_id
    ]
    _insert_tokens(session, rows)


def _insert_tokens(session: Session, rows: list[dict[str, Any]]) -> None:
    rows = [row for row in rows if row["tokens"]]
    if not rows:
        return
    connection = session.connection()
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


def remove_from_index(session: Session, article_ids: Sequence[int]) -> None:
    """Take these articles out of the index; call before their stored text changes (the
    SQLite index needs the tokens it was given, worked out from that text)."""
    state = read_index_state(session)
    if state is None or not state.current:
        return
    ids = [article_id for article_id in article_ids if article_id >= state.indexed_from_id]
    if not ids:
        return
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        connection.execute(
            text(f"DELETE FROM {SEARCH_TABLE} WHERE article_id = ANY(:ids)").bindparams(
                bindparam("ids", type_=ARRAY(BigInteger))
            ),
            {"ids": ids},
        )
        return
    rows = session.exec(
        select(ArticleRow.id, ArticleRow.title, ArticleRow.summary, ArticleRow.content).where(
            col(ArticleRow.id).in_(ids)
        )
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
    """Store's search index: candidates for a query, and building the index."""

    def search_index_state(self) -> IndexState | None:
        """The index's state, None for a database without one (older than the index)."""
        with self._reading() as session:
            return read_index_state(session)

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
        carried by `feed`, with an id below `below_id`, each when given. Only articles the
        index holds (see search_index_state) are candidates."""
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite:
            indexed, key, holds = "s.rowid", "s.rowid", f"{SEARCH_TABLE} MATCH :match"
        else:
            indexed, key = "s.article_id", "s.article_id"
            holds = "s.tokens @@ CAST(:match AS tsquery)"
        conditions = [holds, "a.pruned_at IS NULL", f"{key} >= :indexed_from"]
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
                f"EXISTS (SELECT 1 FROM {FeedArticleRow.__tablename__} f "
                "WHERE f.article_id = a.id AND f.feed_name = :feed)"
            )
            parameters["feed"] = feed
        statement = text(
            f"SELECT {indexed} FROM {SEARCH_TABLE} s JOIN article a ON a.id = {key} "
            f"WHERE {' AND '.join(conditions)} ORDER BY {key} DESC LIMIT :limit"
        )
        with self._reading() as session:
            state = read_index_state(session)
            if state is None or not state.current:
                return []
            parameters["indexed_from"] = state.indexed_from_id
            return list(session.connection().execute(statement, parameters).scalars())

    def search_index_progress(self) -> IndexProgress | None:
        """How much of the stored archive the index does not hold yet; None without one."""
        with self._reading() as session:
            state = read_index_state(session)
            if state is None:
                return None
            indexed_from = state.indexed_from_id if state.current else 2**62
            waiting = session.exec(
                select(func.count())
                .select_from(ArticleRow)
                .where(col(ArticleRow.id) < indexed_from)
                .where(col(ArticleRow.pruned_at).is_(None))
            ).one()
            return IndexProgress(waiting, state.indexed_from_id)

    def index_backlog(self, *, batch_articles: int = INDEX_BATCH_ARTICLES) -> int:
        """Index one batch of the stored articles the index does not hold yet, the newest of
        them, in one transaction; return how many were indexed (0: the index is complete).
        An index made by another version is emptied first (its tokens would not match)."""
        with self._writing() as session:
            state_row = session.exec(select(SearchIndexStateRow).with_for_update()).first()
            if state_row is None:
                return 0
            connection = session.connection()
            if state_row.tokens_version != tokens_version():
                _empty_index(connection)
                for name, value in _reset_values(connection).items():
                    setattr(state_row, name, value)
            below = state_row.indexed_from_id
            rows = session.exec(
                select(ArticleRow.id, ArticleRow.title, ArticleRow.summary, ArticleRow.content)
                .where(col(ArticleRow.id) < below)
                .where(col(ArticleRow.pruned_at).is_(None))
                .order_by(col(ArticleRow.id).desc())
                .limit(batch_articles)
            ).all()
            if not rows:
                state_row.indexed_from_id = min(below, 1)  # (1: it holds every article)
                session.add(state_row)
                return 0
            _insert_tokens(
                session,
                [
                    {"article_id": article_id, "tokens": article_tokens(texts)}
                    for article_id, *texts in rows
                ],
            )
            # Pruned articles below the batch need no indexing; the next batch starts here.
            last_id = rows[-1][0]
            assert last_id is not None  # (stored rows have ids)
            state_row.indexed_from_id = last_id
            session.add(state_row)
            return len(rows)

    def rebuild_search_index(self) -> None:
        """Empty the index and mark every stored article as still to index (index_backlog
        then rebuilds it): after rows were copied into this database, say."""
        with self._writing() as session:
            connection = session.connection()
            _empty_index(connection)
            connection.execute(
                table_of(SearchIndexStateRow).update().values(**_reset_values(connection))
            )


def _empty_index(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.execute(
            text(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('delete-all')")
        )
    else:
        connection.execute(text(f"DELETE FROM {SEARCH_TABLE}"))
