"""The kill matrix: which case catches which fault of the defect catalogue, and how.

"Every case can fail on a known-bad card" is the suite's central claim. The matrix runs the
whole catalogue on the reference virtual card once per fault and keeps, for every case, its
verdict and where a FAIL fired (``CaseResult.failed_at``). A *kill* is strict:

- the case FAILs by its **own** expectation (not in a shared read or a decode step before
  it, not by a raw protocol error escaping the body), and
- the case is one the fault **aims at** (``Fault.aim``): a fault that breaks the whole card
  makes many cases FAIL, but it proves only the cases it was written for.

A fault that ``requires`` a feature the reference product lacks (``co_branded``) runs on the
shipped product that declares the reference's features and that one (products/co-branded.yaml),
and so do, without a fault, the cases only that product makes applicable: the matrix covers
every case some shipped variant of the reference card can run.

The matrix is sound when every applicable case is killed by some fault, every fault kills
some case it aims at, no fault makes a case outside its group and its ``ALSO_BREAKS`` groups
FAIL, and no run ends in a harness ERROR (:meth:`KillMatrix.problems`).

    matrix = build_matrix(processes=2)
    print(matrix.figures()); Path("matrix.json").write_text(matrix.to_json())
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from conformance.card import VirtualCard
from conformance.card.faults import Fault, fault_catalogue
from conformance.cases.catalogue import build_catalogue
from conformance.cases.framework import OWN, Case
from conformance.host.keys import TestKeyProvider
from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    CardProfile,
    load_key_set,
    load_personalization,
    load_profile,
)
from conformance.model.products import Product, applicable, catalogue_plan, load_product
from conformance.resources import PRODUCTS_DIR, names
from conformance.results import CaseResult, Verdict
from conformance.runner import CaseRunner
from conformance.transport.inprocess import InProcessTransport

__all__ = [
    "MATRIX_FORMAT",
    "KillMatrix",
    "Outcome",
    "build_matrix",
    "describe_figures",
    "run_catalogue",
]

MATRIX_FORMAT = "rhc-kill-matrix/1"
"""The ``format`` field of the JSON artefact; bump it when its shape changes."""

REFERENCE = ""
"""The key of the run without a fault in :attr:`KillMatrix.outcomes`."""


@dataclass(frozen=True)
class Outcome:
    """How one case ended under one fault (what the matrix needs of a CaseResult)."""

    verdict: Verdict
    failed_at: str = ""

    @property
    def own_fail(self) -> bool:
        return self.verdict is Verdict.FAIL and self.failed_at == OWN


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class _Bench:
    """Everything a catalogue run on the virtual card needs, loaded once per process."""

    profile: CardProfile
    product: Product
    cases: tuple[Case, ...]


@cache
def _bench() -> _Bench:
    profile = load_profile()
    return _Bench(profile, load_product(None, profile), tuple(build_catalogue(profile)))


@cache
def feature_product(feature: str | None) -> Product:
    """The product a fault requiring ``feature`` runs on: the reference product when it has
    the feature (or none is required), else the shipped ICS that declares the reference's
    features and this one (e.g. co-branded.yaml for co_branded)."""
    bench = _bench()
    if feature is None or bench.product.has(feature):
        return bench.product
    wanted = {*bench.product.features, feature}
    for name in names(PRODUCTS_DIR):
        product = load_product(name, bench.profile)
        if wanted <= set(product.features):
            return product
    raise LookupError(f"no shipped product declares the reference features and {feature}")


def variant_products() -> list[Product]:
    """The products besides the reference one that the catalogue's faults need."""
    bench = _bench()
    required = sorted({f.requires for f in fault_catalogue(bench.profile).values()
                       if f.requires is not None and not bench.product.has(f.requires)})
    return [feature_product(feature) for feature in required]


def _applicable(case: Case, product: Product) -> bool:
    return applicable(case.applicability, product, list(_bench().profile.spec.features))


def _run_on_fresh_card(bench: _Bench, cases: list[Case], faults: frozenset[str],
                       product: Product | None = None) -> dict[str, CaseResult]:
    profile = bench.profile
    product = product or bench.product
    keys = load_key_set(DEFAULT_TEST_KEYS, profile)
    card = VirtualCard.personalize(
        profile, load_personalization(DEFAULT_PERSONALIZATION, profile), keys,
        features=frozenset(product.features), faults=faults,
        other_application=product.other_application or None,
    )
    runner = CaseRunner(
        connect=lambda: InProcessTransport(card, name="virtual"),
        profile=profile,
        keys=TestKeyProvider(keys),
        product=product,
        plan=catalogue_plan(),
    )
    return {case.id: runner.run(case) for case in cases}


def run_catalogue(faults: Iterable[str] = (), cases: Iterable[Case] | None = None,
                  product: Product | None = None) -> dict[str, CaseResult]:
    """The catalogue (or ``cases``) on the virtual card of ``product`` (default: the
    reference product) with ``faults``: non-destructive cases on one card, as a lab runs
    them; each destructive case on a card of its own, so what it destroys cannot spill into
    other verdicts."""
    bench = _bench()
    chosen = list(bench.cases if cases is None else cases)
    fault_set = frozenset(faults)
    results = _run_on_fresh_card(bench, [c for c in chosen if not c.destructive], fault_set,
                                 product)
    for case in chosen:
        if case.destructive:
            results.update(_run_on_fresh_card(bench, [case], fault_set, product))
    return results


def telling_cases(fault: Fault, cases: Iterable[Case]) -> list[Case]:
    """The cases whose verdict under ``fault`` tells the matrix something: those it aims at
    (a kill or not) and those outside its allowed groups (a stray FAIL or not). A case of its
    own or an ALSO_BREAKS group that it does not aim at may PASS or FAIL alike."""
    allowed = fault.allowed_groups
    return [c for c in cases if fault.aims_at(c.id) or c.group not in allowed]


def _outcomes(fault: str, cases: tuple[Case, ...] | None = None, complete: bool = False,
              ) -> tuple[str, dict[str, Outcome]]:
    """A fault's outcomes on the product it requires; for the reference run (no fault),
    those of the reference product, and on each variant product the cases only it makes
    applicable."""
    bench = _bench()
    pool = bench.cases if cases is None else cases
    if not fault:
        results = run_catalogue((), pool)
        for product in variant_products():
            extra = [c for c in pool
                     if _applicable(c, product) and not _applicable(c, bench.product)]
            if extra:
                results.update(run_catalogue((), extra, product))
        return fault, {i: Outcome(r.verdict, r.failed_at) for i, r in results.items()}
    entry = fault_catalogue(bench.profile)[fault]
    chosen: Iterable[Case] = pool if complete else telling_cases(entry, pool)
    results = run_catalogue((fault,), chosen, feature_product(entry.requires))
    return fault, {i: Outcome(r.verdict, r.failed_at) for i, r in results.items()}


# --------------------------------------------------------------------------- the matrix


@dataclass
class KillMatrix:
    """Outcomes of every case under the reference card and under each fault."""

    cases: dict[str, Case]
    applicable: frozenset[str]
    """Case IDs the matrix's product makes applicable (the others cannot be killed here)."""
    outcomes: dict[str, dict[str, Outcome]]
    """Fault name (``""`` for the reference card) → case ID → outcome."""
    seconds: float = 0.0
    processes: int = 1
    complete: bool = False
    """Whether every case ran under every fault (else only each fault's telling cases)."""
    faults: Mapping[str, Fault] = field(default_factory=fault_catalogue)

    @property
    def fault_names(self) -> list[str]:
        return sorted(n for n in self.outcomes if n != REFERENCE)

    def kills(self, fault: str) -> list[str]:
        """Cases the fault aims at that FAIL by their own expectation under it."""
        f = self.faults[fault]
        return sorted(i for i, o in self.outcomes[fault].items() if o.own_fail and f.aims_at(i))

    def killers(self) -> dict[str, list[str]]:
        """Case ID → the faults that kill it (every case listed, killed or not)."""
        out: dict[str, list[str]] = {i: [] for i in self.cases}
        for fault in self.fault_names:
            for case_id in self.kills(fault):
                out[case_id].append(fault)
        return out

    def strays(self, fault: str) -> list[str]:
        """Cases outside the fault's group and ALSO_BREAKS groups that FAIL under it."""
        allowed = self.faults[fault].allowed_groups
        return sorted(i for i, o in self.outcomes[fault].items()
                      if o.verdict is Verdict.FAIL and self.cases[i].group not in allowed)

    def errors(self, fault: str) -> list[str]:
        return sorted(i for i, o in self.outcomes[fault].items() if o.verdict is Verdict.ERROR)

    def problems(self) -> list[str]:
        """Everything that keeps the matrix from proving the catalogue (empty when sound)."""
        out: list[str] = []
        reference = self.outcomes.get(REFERENCE, {})
        bad = sorted(i for i, o in reference.items()
                     if o.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE))
        if bad:
            out.append(f"cases not PASS on the reference card: {bad}")
        uncaught = sorted(i for i, k in self.killers().items() if not k and i in self.applicable)
        if uncaught:
            out.append(f"{len(uncaught)} case(s) no aimed fault kills by its own expectation: "
                       f"{uncaught}")
        for fault in self.fault_names:
            if not self.kills(fault):
                failing = sorted(i for i, o in self.outcomes[fault].items()
                                 if o.verdict is Verdict.FAIL)
                out.append(f"fault {fault} kills no case it aims at ({self.faults[fault].aim}); "
                           f"failing: {failing[:12]}")
            strays = self.strays(fault)
            if strays:
                out.append(f"fault {fault} ({self.faults[fault].group}) makes cases outside its "
                           f"groups FAIL: {strays[:12]}")
            errors = self.errors(fault)
            if errors:
                out.append(f"fault {fault}: harness ERROR in {errors[:12]}")
        return out

    def figures(self) -> dict[str, Any]:
        killers = self.killers()
        killed = [i for i, k in killers.items() if k]
        any_fail = {i for f in self.fault_names for i, o in self.outcomes[f].items()
                    if o.verdict is Verdict.FAIL}
        return {
            "cases": len(self.cases),
            "applicable_cases": len(self.applicable),
            "faults": len(self.fault_names),
            "cases_killed_by_own_expectation": len(killed),
            "cases_failing_under_some_fault": len(any_fail),
            "faults_killing_an_aimed_case": sum(1 for f in self.fault_names if self.kills(f)),
            "problems": len(self.problems()),
            "seconds": round(self.seconds, 1),
            "complete": self.complete,
            "processes": self.processes,
        }

    def to_json(self) -> str:
        killers = self.killers()
        faults: dict[str, Any] = {}
        for name in self.fault_names:
            f = self.faults[name]
            faults[name] = {
                "group": f.group,
                "kind": f.kind,
                "aim": list(f.aim),
                "kills": self.kills(name),
                "fails": sorted(i for i, o in self.outcomes[name].items()
                                if o.verdict is Verdict.FAIL),
                "strays": self.strays(name),
            }
        doc = {
            "format": MATRIX_FORMAT,
            "figures": self.figures(),
            "cases": {i: {"group": self.cases[i].group, "killed_by": killers[i]}
                      for i in self.cases},
            "faults": faults,
            "problems": self.problems(),
        }
        return json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def build_matrix(faults: Iterable[str] | None = None, *, processes: int = 1,
                 cases: Iterable[Case] | None = None, complete: bool = False) -> KillMatrix:
    """Run the catalogue (or ``cases``) under the reference card and each fault (all by
    default), in ``processes`` worker processes, and return the matrix.

    Under a fault only its :func:`telling_cases` run, unless ``complete`` (then every case
    runs, and the JSON's ``fails`` lists every FAIL the fault causes)."""
    bench = _bench()
    catalogue = fault_catalogue(bench.profile)
    names = sorted(catalogue if faults is None else faults)
    chosen = bench.cases if cases is None else tuple(cases)
    run = partial(_outcomes, cases=None if cases is None else chosen, complete=complete)
    started = time.perf_counter()
    jobs = [REFERENCE, *names]
    if processes > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(processes) as pool:
            outcomes = dict(pool.imap_unordered(run, jobs))
    else:
        outcomes = dict(map(run, jobs))
    products = [bench.product, *variant_products()]
    return KillMatrix(
        cases={c.id: c for c in chosen},
        applicable=frozenset(c.id for c in chosen
                             if any(_applicable(c, product) for product in products)),
        outcomes=outcomes,
        seconds=time.perf_counter() - started,
        processes=processes,
        faults=catalogue,
        complete=complete,
    )


def describe_figures(matrix: KillMatrix) -> str:
    """The matrix's figures and problems as the lines ``rhc card faults --matrix`` prints."""
    f = matrix.figures()
    lines = [
        f"cases: {f['cases']} ({f['applicable_cases']} applicable to the reference product "
        f"or a variant its faults need)",
        f"faults: {f['faults']} ({f['faults_killing_an_aimed_case']} kill a case they aim at)",
        f"cases killed by their own expectation under an aimed fault: "
        f"{f['cases_killed_by_own_expectation']}",
        f"cases failing under some fault (any FAIL, any fault): "
        f"{f['cases_failing_under_some_fault']}",
        f"run time: {f['seconds']} s on {f['processes']} process(es)",
    ]
    problems = matrix.problems()
    lines.append(f"problems: {len(problems)}")
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)
