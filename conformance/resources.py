"""Where the data shipped inside the package lives: profiles, plans, fixtures, report schema.

The same files serve a checkout (where the top-level `profiles/` and `fixtures/` are links
into the package) and an installed wheel, so nothing is found relative to a source tree.
A lab's own files are always given by path; only names such as `--plan selftest` or
`--product minimal` and the defaults resolve here.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _package_root() -> Path:
    root = files("conformance")
    if not isinstance(root, Path):  # a zip import: the loaders below need real files
        raise RuntimeError("the conformance package must be installed as files, not a zip")
    return root


PACKAGE_DIR = _package_root()
PROFILES_DIR = PACKAGE_DIR / "profiles"
STANDARD_DIR = PROFILES_DIR / "standard"
PRODUCTS_DIR = PROFILES_DIR / "products"
PLANS_DIR = PROFILES_DIR / "plans"
FIXTURES_DIR = PACKAGE_DIR / "fixtures"
PERSONALIZATIONS_DIR = FIXTURES_DIR / "personalizations"
PKI_DIR = FIXTURES_DIR / "pki"
REPORT_DIR = PACKAGE_DIR / "report"
TEMPLATES_DIR = REPORT_DIR / "templates"

DEFAULT_PROFILE = STANDARD_DIR / "wst543.yaml"
UNTESTED_PATH = STANDARD_DIR / "untested.yaml"
DEFAULT_PRODUCT = PRODUCTS_DIR / "reference.yaml"
DEFAULT_PLAN = "certification"
DEFAULT_PERSONALIZATION = PERSONALIZATIONS_DIR / "default.yaml"
DEFAULT_TEST_KEYS = FIXTURES_DIR / "test-keys.yaml"
DEMO_LAB = FIXTURES_DIR / "lab-demo.yaml"
DEMO_SUBMISSION = FIXTURES_DIR / "submission-demo.yaml"  # an example, never a default
DEMO_BENCH = FIXTURES_DIR / "bench-demo.yaml"  # an example, never a default
DEMO_CA = PKI_DIR / "demo-ca.pem"
DEMO_CERT = PKI_DIR / "demo-lab.pem"
DEMO_KEY = PKI_DIR / "demo-lab-key.pem"
DEMO_P12 = PKI_DIR / "demo-lab.p12"
XSD_PATH = REPORT_DIR / "report.xsd"


def shipped_name(path: Path) -> str:
    """How reports name a file: `profiles/standard/untested.yaml` if shipped, else its path."""
    try:
        return path.resolve().relative_to(PACKAGE_DIR.resolve()).as_posix()
    except ValueError:
        return str(path)


def named(directory: Path, value: str) -> Path | None:
    """A file given by path, or by the name of a shipped one (`selftest` → plans/selftest.yaml).

    A value with a suffix or a directory part is a path and returned as it is; a bare name is
    the shipped file of that name, or None when there is none (see `names`).
    """
    path = Path(value)
    if path.suffix or len(path.parts) > 1:
        return path
    candidate = directory / f"{value}.yaml"
    return candidate if candidate.is_file() else None


def names(directory: Path) -> list[str]:
    """The names of the shipped YAML files in a directory (for "known: …" in errors)."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


def locations() -> dict[str, Path]:
    """What `rhc paths` prints: where the shipped data of this installation is."""
    return {
        "package": PACKAGE_DIR,
        "profiles": PROFILES_DIR,
        "profile": DEFAULT_PROFILE,
        "products": PRODUCTS_DIR,
        "plans": PLANS_DIR,
        "fixtures": FIXTURES_DIR,
        "test-keys": DEFAULT_TEST_KEYS,
        "personalizations": PERSONALIZATIONS_DIR,
        "lab": DEMO_LAB,
        "submission-example": DEMO_SUBMISSION,
        "bench-example": DEMO_BENCH,
        "demo-ca": DEMO_CA,
        "demo-cert": DEMO_CERT,
        "demo-key": DEMO_KEY,
        "report-xsd": XSD_PATH,
        "templates": TEMPLATES_DIR,
    }
