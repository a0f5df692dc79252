"""report.xml: the model as XML (lxml), sealed per element and validated against reports/report.xsd.

Seals: every section and every case carries seal = SHA-256 of the exclusive C14N of the element
without its seal attribute. The enveloped signature covers the seals, so when the signature
breaks, the verifier can still name the element that changed instead of only "digest mismatch".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from lxml import etree

from conformance.lab import Person
from conformance.report.manifest import Manifest
from conformance.report.model import (
    CONCLUSION_RULE_EN,
    CONCLUSION_RULE_ZH,
    VERDICTS,
    Artifact,
    ReportError,
    ReportModel,
    sha256_bytes,
)
from conformance.resources import XSD_PATH

NS = "urn:rhc-conformance:report:1"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
NSMAP = {"r": NS, "ds": DS_NS, "xades": XADES_NS}
SEAL = "seal"
SCHEMA_VERSION = "2"
"""2: the lab's people and place, submission, bench file, deviations, requirement texts,
expected/measured values, lab-local times, one evidence digest."""


def q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def parser() -> etree.XMLParser:
    """A parser that never fetches or expands anything (the XML may come from anyone)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@functools.cache
def schema() -> etree.XMLSchema:
    try:
        return etree.XMLSchema(etree.parse(str(XSD_PATH), parser()))
    except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise ReportError(f"the report schema {XSD_PATH} cannot be loaded: {exc}") from None


def schema_problems(doc: etree._Element) -> list[str]:
    """XSD errors naming line and element path (empty when valid)."""
    xsd = schema()
    if xsd.validate(doc):
        return []
    return [
        f"line {e.line} ({e.path}): {e.message}" if e.line else f"{e.path}: {e.message}"
        for e in xsd.error_log  # type: ignore[attr-defined]
    ]


def seal_of(element: etree._Element) -> str:
    """SHA-256 of the element's exclusive C14N with its own seal attribute left out."""
    saved = element.attrib.pop(SEAL, None)
    try:
        return sha256_bytes(etree.tostring(element, method="c14n", exclusive=True))
    finally:
        if saved is not None:
            element.set(SEAL, saved)


def sealed_elements(root: etree._Element) -> Iterator[etree._Element]:
    yield from root.iterfind(f"./*[@{SEAL}]")
    yield from root.iterfind(f"./{q('cases')}/{q('case')}[@{SEAL}]")


def describe(element: etree._Element) -> str:
    """A human name for an element: <case id="ATR-001"> (line 12)."""
    name = etree.QName(element).localname
    key = element.get("id")
    label = f'<{name} id="{key}">' if key is not None else f"<{name}>"
    return f"{label} (line {element.sourceline})" if element.sourceline else label


# ---------------------------------------------------------------------------------------------
# model -> XML


_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(value: str) -> str:
    """Text lxml accepts: control characters (e.g. from a raw card answer) become \\xNN."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def _sub(
    parent: etree._Element, tag: str, content: str | None = None, **attrs: str
) -> etree._Element:
    element = etree.SubElement(parent, q(tag), {k: xml_safe(v) for k, v in attrs.items()})
    if content is not None:
        element.text = xml_safe(content)
    return element


def _localized(parent: etree._Element, tag: str, zh: str, en: str) -> None:
    _sub(parent, tag, zh, lang="zh")
    _sub(parent, tag, en, lang="en")


def _properties(parent: etree._Element, tag: str, pairs: list[tuple[str, str]]) -> None:
    for key, value in pairs:
        _sub(parent, tag, value, key=key)


def _person(parent: etree._Element, tag: str, person: Person) -> None:
    element = _sub(parent, tag)
    _sub(element, "name", person.name)
    if person.title:
        _sub(element, "role", person.title)


def _source(art: Artifact | None) -> dict[str, str]:
    """The file a section came from, as attributes (path as the report names it, digest)."""
    if art is None:
        return {}
    return {k: v for k, v in (("source", art.path), ("sha256", art.sha256)) if v}


def _counts(parent: etree._Element, tag: str, counts: dict[str, int], **attrs: str) -> None:
    element = _sub(parent, tag, total=str(sum(counts.values())), **attrs)
    for verdict in VERDICTS:
        _sub(element, "count", str(counts.get(verdict, 0)), verdict=verdict)


def _artifact(parent: etree._Element, art: Artifact) -> None:
    attrs = {"role": art.role, "name": art.name, "version": art.version, "path": art.path}
    _sub(
        parent,
        "artifact",
        sha256=art.sha256,
        **{k: v for k, v in attrs.items() if v or k == "role"},
    )


def _double(value: float) -> str:
    return repr(float(value))


def _submission(root: etree._Element, model: ReportModel) -> None:
    sub = model.submission
    assert sub is not None
    element = _sub(root, "submission", demo="true" if sub.demo else "false",
                   number=sub.number, **_source(model.submission_source))
    client = _sub(element, "client")
    _localized(client, "name", sub.client.name_zh, sub.client.name_en)
    _sub(client, "address", sub.client.address)
    _sub(client, "contact", sub.client.contact)
    product = sub.product
    _sub(element, "product", name=product.name, model=product.model,
         manufacturer=product.manufacturer, version=product.version)
    for sample in sub.samples:
        item = _sub(element, "sample", id=sample.id, received=sample.received.isoformat())
        _sub(item, "description", sample.description)
        _sub(item, "condition", sample.condition)
        if sample.chip_serial:
            _sub(item, "chipSerial", sample.chip_serial)


def _environment(bench: etree._Element, model: ReportModel) -> None:
    bench_file = model.bench_file
    assert bench_file is not None
    env = bench_file.environment
    attrs = {"instrument": env.instrument} if env.instrument else {}
    if env.measured_at is not None:
        attrs["measuredAt"] = env.measured_at.isoformat()
    environment = _sub(bench, "environment", **attrs)
    for name, reading in env.readings():
        _sub(environment, "reading", quantity=name, value=_double(reading.value),
             unit=reading.unit, min=_double(reading.min), max=_double(reading.max),
             within="true" if reading.within else "false")
    for row in model.equipment:
        item = row.item
        attrs = {"id": item.id, "kind": item.kind, "name": item.name, "model": item.model,
                 "serial": item.serial, "used": "true" if row.used else "false"}
        optional = {"firmware": item.firmware, "pcscReader": row.pcsc_name,
                    "driver": row.driver, "pcscLite": row.pcsc_lite,
                    "calibrationDue": item.calibration_due.isoformat()
                    if item.calibration_due else ""}
        if row.calibration_ok is not None:
            optional["calibrationValid"] = "true" if row.calibration_ok else "false"
        _sub(bench, "equipment", **attrs, **{k: v for k, v in optional.items() if v})


def _manifest(root: etree._Element, model: ReportModel, manifest: Manifest) -> None:
    """Every file of the run by digest (report/manifest.py); the PDF as rendered, pre-PAdES;
    first the one digest over the evidence digests that the PDF prints."""
    element = _sub(root, "manifest", count=str(len(manifest.files)))
    _sub(element, "evidence", count=str(model.evidence_count), sha256=model.evidence_manifest)
    for entry in manifest.files:
        _sub(element, "file", path=entry.path, size=str(entry.size), sha256=entry.sha256)
    if manifest.pdf is not None:
        pdf = manifest.pdf
        _sub(element, "pdf", path=pdf.path, renderedSize=str(pdf.size), renderedSha256=pdf.sha256)


def build_xml(model: ReportModel, manifest: Manifest) -> etree._Element:
    """The unsigned, sealed report element (validate with schema_problems before signing)."""
    root = etree.Element(
        q("report"),
        nsmap={None: NS},
        schemaVersion=SCHEMA_VERSION,
        id=model.report_id,
        generated=model.generated,
    )
    header = _sub(root, "header")
    _localized(header, "title", model.title_zh, model.title_en)
    _sub(header, "suiteVersion", model.suite_version)
    _sub(header, "started", model.started)
    _sub(header, "finished", model.finished)
    _sub(header, "timezone", model.timezone)
    _sub(header, "signingKey", demo="true" if model.demo_key else "false")
    for note in model.notes:
        _sub(header, "note", note)

    lab_file = model.lab
    lab = _sub(root, "lab", demo="true" if lab_file.demo else "false", code=lab_file.code,
               **_source(model.lab_source))
    _localized(lab, "name", lab_file.name_zh, lab_file.name_en)
    _sub(lab, "accreditation", lab_file.accreditation)
    _sub(lab, "address", lab_file.address)
    _sub(lab, "placeOfTesting", lab_file.place_of_testing)
    for role in ("tester", "reviewer", "approver"):
        _person(lab, role, getattr(lab_file.people, role))

    if model.submission is not None:
        _submission(root, model)

    product = _sub(root, "product")
    _sub(product, "vendor", model.product.vendor)
    _sub(product, "name", model.product.name)
    _sub(product, "version", model.product.version)
    ics_attrs = {"path": model.product.ics_path, "sha256": model.product.ics_sha256}
    ics = _sub(product, "ics", **{k: v for k, v in ics_attrs.items() if v})
    _properties(ics, "item", model.product.ics)
    for row in model.product.ics_rows:
        item = _sub(ics, "statement", row.value, key=row.key)
        item.set("labelZh", xml_safe(row.zh))
        item.set("labelEn", xml_safe(row.en))
    _properties(product, "property", model.product.extra)

    samples = _sub(root, "samples")
    for index, sample in enumerate(model.samples, start=1):
        element = _sub(samples, "sample", index=str(index))
        _sub(element, "atr", sample.atr)
        _sub(element, "chipSerial", sample.chip_serial)
        _sub(element, "cardNumberFactor", sample.card_number_factor)
        _sub(element, "reader", sample.reader)
        _properties(element, "property", sample.extra)

    bench = _sub(root, "bench", **_source(model.bench_source))
    for reader in model.bench.readers:
        _sub(bench, "reader", reader)
    _sub(bench, "pcscLite", model.bench.pcsc_lite)
    _sub(bench, "driver", model.bench.driver)
    _sub(bench, "os", model.bench.os)
    _sub(bench, "python", model.bench.python)
    _properties(bench, "property", model.bench.extra)
    if model.bench_file is not None:
        _environment(bench, model)

    deviations = _sub(root, "deviations", count=str(len(model.deviations)))
    for deviation in model.deviations:
        _localized(_sub(deviations, "deviation"), "text", deviation.zh, deviation.en)

    provenance = _sub(root, "provenance")
    for art in [model.profile, model.plan, *model.sources]:
        _artifact(provenance, art)

    conclusion = _sub(root, "conclusion", value=model.conclusion, recordedByRun=model.run_verdict,
                      scope=model.scope)
    _localized(conclusion, "statement", model.statement_zh, model.statement_en)
    _localized(conclusion, "rule", CONCLUSION_RULE_ZH, CONCLUSION_RULE_EN)
    _counts(conclusion, "counts", model.counts)
    _counts(conclusion, "mandatoryCounts", model.mandatory_counts)

    groups = _sub(root, "groups")
    for group in model.groups:
        _counts(groups, "group", group.counts, name=group.name)

    cases = _sub(root, "cases", count=str(len(model.cases)))
    for entry in model.cases:
        r = entry.result
        case = _sub(
            cases,
            "case",
            id=r.id,
            group=r.group or "-",
            verdict=str(r.verdict),
            mandatory="true" if r.mandatory else "false",
            severity=r.severity,
            durationS=_double(r.duration_s),
        )
        _localized(case, "title", r.title_zh, r.title_en)
        _sub(case, "clause", r.clause)
        _sub(case, "purpose", r.purpose)
        _sub(case, "applicability", r.applicability)
        requirement = _sub(case, "requirement", key=entry.field("requirement"),
                           source=entry.field("source"))
        _localized(requirement, "text", entry.field("requirement_zh"),
                   entry.field("requirement_en"))
        for sw in r.expected_sw:
            _sub(case, "expectedSw", str(sw))
        _sub(case, "expected", entry.expected)
        _sub(case, "measured", entry.measured)
        _sub(case, "reason", r.reason)
        _sub(case, "reasonZh", entry.reason_zh)
        if r.reference_choice:
            _sub(case, "referenceChoice", r.reference_choice)
        if entry.evidence_path:
            _sub(case, "evidence", path=entry.evidence_path, sha256=entry.evidence_sha256)

    untested = _sub(
        root, "untested", path=model.untested_source.path, sha256=model.untested_source.sha256
    )
    for item in model.untested:
        req = _sub(untested, "requirement", id=item.id, subject=item.subject, method=item.method)
        _localized(req, "title", item.title_zh, item.title_en)
        _sub(req, "reference", item.reference)
        if item.applicability:
            _sub(req, "applicability", item.applicability)
        if item.evidence:
            _sub(req, "evidence", item.evidence)

    _manifest(root, model, manifest)
    etree.indent(root, space=" ")  # readable, and problems can cite useful line numbers
    for element in [*root.iterfind(f"./{q('cases')}/{q('case')}"), *root]:
        if element.tag != q("cases"):
            element.set(SEAL, seal_of(element))
    return root


def check_schema(doc: etree._Element) -> None:
    """Raise ReportError naming the XSD violations (a malformed model never gets signed)."""
    problems = schema_problems(doc)
    if problems:
        shown = "; ".join(problems[:5]) + ("; …" if len(problems) > 5 else "")
        raise ReportError(f"report.xml does not match {XSD_PATH.name}: {shown}")
