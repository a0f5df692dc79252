"""Deployment validation of issued-card data (`rhc validate cards`; rules in profiles/rules/).

check.py    check_card: one card against the rules, a pure function (streaming and DuckDB)
ruleset.py  the rules files, validated and joined to the card profile
gb2260.py   the shipped GB/T 2260 division codes (item 57)
sources.py  cards from dumps, CSV exports (UTF-8 / GBK) and readers, one at a time
run.py      a streaming run writing validation.json and findings.csv
duck.py     the same check as a DuckDB function over a card table
cli.py      the `rhc validate cards` command
"""
