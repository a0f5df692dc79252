"""The interoperability matrix (issue 12 part 4): card variants × terminal profiles, every
pair served and judged by the terminal suite, one report (interop.json, .html, .pdf)."""
