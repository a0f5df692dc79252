"""Terminal conformance (TERMINAL.md): the suite plays the card, the terminal is judged.

A terminal profile (``profiles/terminals/*.yaml``) names the program to start once per
transaction; test cards and cases are data under ``fixtures/terminal/``; every APDU the served
card and SAM receive is recorded and judged against REFERENCE.md and TERMINAL.md.
"""
