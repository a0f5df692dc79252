"""The card rules inside DuckDB: `rhc_check(...)` as a SQL function over a card table.

A province with tens of millions of cards keeps them in a table, not in files. DuckDB runs
the scan, the grouping and the output; the rules stay the one pure function
(check.check_card), registered as a Python scalar function that returns the card's findings
as a list of structs. A query unnests them:

    import duckdb
    from conformance.validate.check import Context
    from conformance.validate.duck import check_table

    con = duckdb.connect("cards.duckdb")
    findings = check_table(con, "cards", Context.load())   # a DuckDB relation
    findings.write_csv("findings.csv")                       # or .aggregate("rule, count(*)")

The table has one column per item, named ``item_<n>`` (any subset; other types are cast to
VARCHAR), and a card identifier column (default ``card_id``); a card-management export loads
as such a table with ``read_csv(..., all_varchar = true)``.
"""

from __future__ import annotations

import inspect
from typing import Any

import duckdb

from conformance.validate.check import Context, check_card, item_number

__all__ = ["FINDING_TYPE", "check_table", "findings_sql", "register"]

_FIELDS = {"card": "VARCHAR", "rule": "VARCHAR", "item": "INTEGER", "value": "VARCHAR",
           "message_zh": "VARCHAR", "message_en": "VARCHAR", "city": "VARCHAR"}
FINDING_TYPE = "STRUCT(" + ", ".join(f"{k} {v}" for k, v in _FIELDS.items()) + ")[]"


def register(con: duckdb.DuckDBPyConnection, context: Context, items: list[int], *,
             name: str = "rhc_check") -> str:
    """Register `name(card_id, item_<n> for n in items)` returning the card's findings."""
    numbers = tuple(items)

    def rhc_check(card_id: str | None, *values: str | None) -> list[dict[str, Any]]:
        card = {n: v for n, v in zip(numbers, values, strict=True) if v is not None}
        return [f._asdict() for f in check_card(card_id or "", card, context)]

    # DuckDB takes the arity from the signature: one VARCHAR per column, none variadic
    params = [inspect.Parameter(f"p{i}", inspect.Parameter.POSITIONAL_ONLY)
              for i in range(1 + len(numbers))]
    rhc_check.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    con.create_function(name, rhc_check, [duckdb.sqltype("VARCHAR")] * (1 + len(numbers)),
                        duckdb.sqltype(FINDING_TYPE), null_handling="special",
                        side_effects=False)
    return name


def findings_sql(table: str, columns: dict[int, str], *, card_column: str = "card_id",
                 name: str = "rhc_check") -> str:
    """The query of every finding of a table: one row per finding (card, rule, item, …)."""
    args = ", ".join([f'CAST("{card_column}" AS VARCHAR)',
                      *(f'CAST("{col}" AS VARCHAR)' for col in columns.values())])
    return f"SELECT f.* FROM (SELECT unnest({name}({args})) AS f FROM {table})"


def check_table(con: duckdb.DuckDBPyConnection, table: str, context: Context, *,
                card_column: str = "card_id") -> duckdb.DuckDBPyRelation:
    """Every finding of the cards in `table` (its item_<n> columns the profile knows)."""
    described = con.execute(f"DESCRIBE {table}").fetchall()
    columns = {}
    for row in described:
        column = str(row[0])
        number = item_number(column) if column.startswith("item_") else None
        if number is not None and number in context.profile.items:
            columns[number] = column
    name = register(con, context, list(columns))
    return con.sql(findings_sql(table, columns, card_column=card_column, name=name))
