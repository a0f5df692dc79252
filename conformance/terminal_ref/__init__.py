"""The reference terminal: `rhc terminal reference`, a program that speaks TERMINAL.md.

It is built on the host session (:mod:`conformance.host`) over PC/SC, and carries the
faults of :mod:`conformance.terminal_ref.faults` so the terminal suite can show it catches
each. Like the host, it knows the card only through a transport: it never imports
conformance.card.
"""
