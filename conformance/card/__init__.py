"""The card side: the reference virtual card, its faults, and the vpcd bridge to PC/SC."""
