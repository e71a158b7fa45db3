"""Any text a user types is a valid search: never an FTS5 syntax error."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubbub.store.messages import MAX_TERMS, fts5_query, search_terms


@pytest.fixture(scope="module")
def fts() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE f USING fts5(text, tokenize='unicode61 remove_diacritics 2')")
    db.execute("INSERT INTO f VALUES ('quick brown fox'), ('\"quoted\" NEAR(x) * AND OR')")
    yield db
    db.close()


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("ab \"*()^:-+'{}NEARNDOT\\%\t\x00é"), max_size=40) | st.text()
)
def test_any_query_is_valid_fts5(fts: sqlite3.Connection, query: str) -> None:
    terms = search_terms(query)
    assert len(terms) <= MAX_TERMS
    assert all("\x00" not in term and term.strip() == term for term in terms)
    if terms:
        fts.execute("SELECT rowid FROM f WHERE f MATCH ?", (fts5_query(terms),)).fetchall()


def test_terms_are_quoted_literally(fts: sqlite3.Connection) -> None:
    assert fts5_query(search_terms('say "hi" NEAR( * x')) == '"say" """hi""" "NEAR(" "x"'
    rows = fts.execute("SELECT text FROM f WHERE f MATCH ?", (fts5_query(["NEAR("]),)).fetchall()
    assert rows == [('"quoted" NEAR(x) * AND OR',)]
