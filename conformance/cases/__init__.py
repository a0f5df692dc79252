"""The conformance cases. Each group module has `cases(profile) -> list[Case]`; generic rules
are generated from the model (every file, every item, every key), specific ones are written
by hand. Cases judge a card only through its APDU interface: they never import
conformance.card."""
