"""rhc: conformance test suite for the resident health card (居民健康卡, WS/T 543)."""

__version__ = "0.1.0"
