"""The report model: everything a signed report states, built from a run directory.

The run directory (conformance/results.py) is the input contract. summary.json's free-form dicts
are read defensively: the keys below are used when present, any other key is kept and shown as
an extra property, so a new field written by the plugin reaches the report without code here.

  card     atr, chip_serial, card_number_factor, reader  (or card["samples"]: a list of such)
  product  vendor, name, version, ics (dict or list), ics_path, ics_sha256
  profile  name, version, path, sha256      plan  name, version, path, sha256
  bench    readers (list or str), pcsc_lite, driver, os, python

One model feeds the XML (signed), the HTML and the PDF, so they cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from conformance.resources import DEMO_LAB, PACKAGE_DIR, UNTESTED_PATH, shipped_name
from conformance.results import (
    CaseResult,
    Conclusion,
    RunSummary,
    Scope,
    Verdict,
    conclude,
    read_results,
    read_summary,
    scope_of,
    statement,
)

VERDICTS: tuple[str, ...] = tuple(v.value for v in Verdict)
METHODS = ("declaration", "inspection", "lab_apparatus")

TITLE_ZH = "居民健康卡用户卡符合性检测报告"
TITLE_EN = "Resident Health Card — Conformance Test Report"
TITLES = {
    Scope.CERTIFICATION: (TITLE_ZH, TITLE_EN),
    Scope.PARTIAL: (
        "居民健康卡用户卡检测报告（部分检测，非认证）",
        "Resident Health Card — Test Report (partial run) — not a certification",
    ),
    Scope.BENCH_SELF_TEST: (
        "测试台自检报告（虚拟卡）— 非产品认证",
        "Bench self-test report (virtual card) — not a product certification",
    ),
}
"""Page 1's title by what the run stands for: only a certification reads as one."""
CONCLUSION_RULE_ZH = (
    "仅当认证计划覆盖目录中全部适用的必测项目、均为“通过”、测试完整且样品为产品（非虚拟卡）时，"
    "结论为“符合”；其他计划或选择的结论为“未发现不通过项（非认证）”。"
)
CONCLUSION_RULE_EN = (
    "CONFORMANT only if a certification plan covered every applicable mandatory case of the "
    "catalogue on a product sample (not the virtual card), every one PASSed and the run "
    "completed; any other plan or selection without failures concludes NO_FAILURES."
)


class ReportError(Exception):
    """A report could not be written: the message says what to fix (no traceback needed)."""


@dataclass
class Person:
    name: str
    role: str = ""


@dataclass
class Lab:
    name_zh: str
    name_en: str
    accreditation: str
    engineer: Person
    address: str = ""
    reviewer: Person | None = None
    demo: bool = False


@dataclass
class Product:
    vendor: str = ""
    name: str = ""
    version: str = ""
    ics: list[tuple[str, str]] = field(default_factory=list)
    ics_path: str = ""
    ics_sha256: str = ""
    extra: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Sample:
    atr: str = ""
    chip_serial: str = ""
    card_number_factor: str = ""
    reader: str = ""
    extra: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Bench:
    readers: list[str] = field(default_factory=list)
    pcsc_lite: str = ""
    driver: str = ""
    os: str = ""
    python: str = ""
    extra: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Artifact:
    """A file the run rests on (profile, plan, a source file of the run) and its SHA-256."""

    role: str
    name: str = ""
    version: str = ""
    path: str = ""
    sha256: str = ""


@dataclass
class CaseEntry:
    """One case as reported: the run's CaseResult with its evidence digest re-checked."""

    result: CaseResult
    evidence_path: str = ""
    evidence_sha256: str = ""

    @property
    def verdict(self) -> str:
        return str(self.result.verdict)


@dataclass
class GroupCount:
    name: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Untested:
    id: str
    subject: str
    title_zh: str
    title_en: str
    reference: str
    method: str
    applicability: str = ""
    evidence: str = ""


@dataclass
class ReportModel:
    report_id: str
    generated: str
    lab: Lab
    product: Product
    samples: list[Sample]
    bench: Bench
    profile: Artifact
    plan: Artifact
    sources: list[Artifact]
    suite_version: str
    started: str
    finished: str
    conclusion: str
    run_verdict: str
    counts: dict[str, int]
    groups: list[GroupCount]
    cases: list[CaseEntry]
    untested: list[Untested]
    untested_source: Artifact
    demo_key: bool = True
    notes: list[str] = field(default_factory=list)
    privacy: str = ""
    title_zh: str = TITLE_ZH
    title_en: str = TITLE_EN
    scope: str = Scope.CERTIFICATION.value
    statement_zh: str = ""
    statement_en: str = ""
    """The conclusion as a sentence that says what the run was (results.statement)."""

    @property
    def mandatory_counts(self) -> dict[str, int]:
        counts = {v: 0 for v in VERDICTS}
        for case in self.cases:
            if case.result.mandatory and case.verdict in counts:
                counts[case.verdict] += 1
        return counts

    @property
    def observations(self) -> list[tuple[str, str]]:
        """(case id, observation): answers the text allows besides the reference one, and
        [choice] deviations a plan let pass."""
        return [(c.result.id, o) for c in self.cases for o in c.result.observations]


# ---------------------------------------------------------------------------------------------
# helpers


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def text(value: Any) -> str:
    """Any summary value as one line of text (lists joined, dicts as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _pick(data: dict[str, Any], used: set[str], *keys: str) -> str:
    for key in keys:
        if key in data and data[key] not in (None, ""):
            used.add(key)
            return text(data[key])
    used.update(k for k in keys if k in data)
    return ""


def _extra(data: Mapping[str, Any], used: set[str]) -> list[tuple[str, str]]:
    return [(str(k), text(v)) for k, v in sorted(data.items()) if k not in used]


def _pairs(value: Any) -> list[tuple[str, str]]:
    """An ICS given as a dict, a list of {key/name, value} dicts, or a list of strings."""
    if isinstance(value, Mapping):
        return [(str(k), text(v)) for k, v in value.items()]
    if isinstance(value, list):
        pairs: list[tuple[str, str]] = []
        for item in value:
            if isinstance(item, Mapping):
                key = item.get("key", item.get("name", item.get("id", "")))
                rest = {k: v for k, v in item.items() if k not in ("key", "name", "id")}
                val = rest.get("value", rest) if len(rest) != 1 else next(iter(rest.values()))
                pairs.append((text(key), text(val)))
            else:
                pairs.append((text(item), ""))
        return pairs
    return [] if value in (None, "") else [("", text(value))]


def safe_relative(run_dir: Path, rel: str) -> Path:
    """The file `rel` inside run_dir; refuses absolute paths and escapes (`..`, symlinks out)."""
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise ReportError(f"evidence path {rel!r} must be relative and inside the run directory")
    path = run_dir.joinpath(*pure.parts)
    try:
        path.resolve().relative_to(run_dir.resolve())
    except (OSError, RuntimeError, ValueError):
        raise ReportError(f"evidence path {rel!r} leads outside the run directory") from None
    return path


def _iso(value: str, what: str) -> str:
    if not value:
        return ""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"summary.json: {what} {value!r} is not an ISO 8601 date-time") from None
    return parsed.isoformat()


# ---------------------------------------------------------------------------------------------
# loaders


def _load_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{what} {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ReportError(f"{what} {path} is not valid YAML: {exc}") from None


def load_lab(path: Path | str | None = None) -> Lab:
    """The lab's identity from a YAML file (default: the DEMO lab in fixtures/lab-demo.yaml)."""
    path = Path(path) if path else DEMO_LAB
    data = _load_yaml(path, "lab file")
    if not isinstance(data, dict):
        raise ReportError(f"lab file {path}: expected a mapping at the top level")
    missing = [k for k in ("name_zh", "name_en", "accreditation", "engineer") if not data.get(k)]
    if missing:
        raise ReportError(f"lab file {path}: missing {', '.join(missing)}")

    def person(value: Any, key: str) -> Person:
        if isinstance(value, str):
            return Person(name=value)
        if isinstance(value, dict) and value.get("name"):
            return Person(name=str(value["name"]), role=str(value.get("role", "")))
        raise ReportError(f"lab file {path}: {key} needs a name")

    return Lab(
        name_zh=str(data["name_zh"]),
        name_en=str(data["name_en"]),
        accreditation=str(data["accreditation"]),
        engineer=person(data["engineer"], "engineer"),
        address=str(data.get("address", "")),
        reviewer=person(data["reviewer"], "reviewer") if data.get("reviewer") else None,
        demo=bool(data.get("demo", False)),
    )


def load_untested(path: Path | None = None) -> list[Untested]:
    """The requirements not testable over PC/SC (profiles/standard/untested.yaml)."""
    path = path or UNTESTED_PATH
    data = _load_yaml(path, "untested catalogue")
    items = data.get("requirements") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ReportError(f"{path}: expected a top-level 'requirements' list")
    out: list[Untested] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"{path}: requirements[{index}]"
        if not isinstance(item, dict):
            raise ReportError(f"{where}: expected a mapping")
        for key in ("id", "subject", "title_zh", "title_en", "reference", "method"):
            if not item.get(key):
                raise ReportError(f"{where}: missing {key}")
        if item["method"] not in METHODS:
            raise ReportError(f"{where}: method {item['method']!r} is not one of {METHODS}")
        if item["id"] in seen:
            raise ReportError(f"{where}: duplicate id {item['id']}")
        seen.add(item["id"])
        out.append(
            Untested(
                id=str(item["id"]),
                subject=str(item["subject"]),
                title_zh=str(item["title_zh"]),
                title_en=str(item["title_en"]),
                reference=str(item["reference"]),
                method=str(item["method"]),
                applicability=str(item.get("applicability", "")),
                evidence=str(item.get("evidence", "")),
            )
        )
    return out


def _samples(card: dict[str, Any]) -> list[Sample]:
    raw = card.get("samples")
    entries: Iterable[Any] = raw if isinstance(raw, list) and raw else [card]
    samples: list[Sample] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        used: set[str] = {"samples"}
        sample = Sample(
            atr=_pick(entry, used, "atr", "ATR"),
            chip_serial=_pick(entry, used, "chip_serial", "chip_sn", "serial", "csn"),
            card_number_factor=_pick(entry, used, "card_number_factor", "factor"),
            reader=_pick(entry, used, "reader"),
        )
        sample.extra = _extra(entry, used)
        samples.append(sample)
    return samples


def _artifact(role: str, data: dict[str, Any]) -> Artifact:
    used: set[str] = set()
    art = Artifact(
        role=role,
        name=_pick(data, used, "name", "id"),
        version=_pick(data, used, "version"),
        path=_pick(data, used, "path", "file"),
        sha256=_pick(data, used, "sha256", "digest"),
    )
    if not art.sha256 and art.path:
        candidate = Path(art.path)
        if not candidate.is_absolute():
            candidate = PACKAGE_DIR / candidate
        if candidate.is_file():
            art.sha256 = sha256_path(candidate)
    return art


def _product(data: dict[str, Any]) -> Product:
    used: set[str] = {"ics"}
    product = Product(
        vendor=_pick(data, used, "vendor", "manufacturer"),
        name=_pick(data, used, "name", "product"),
        version=_pick(data, used, "version", "cos_version"),
        ics=_pairs(data.get("ics")),
        ics_path=_pick(data, used, "ics_path", "path"),
        ics_sha256=_pick(data, used, "ics_sha256", "sha256"),
    )
    product.extra = _extra(data, used)
    return product


def _bench(data: dict[str, Any]) -> Bench:
    used: set[str] = {"readers", "reader"}
    readers = data.get("readers", data.get("reader", []))
    bench = Bench(
        readers=[text(r) for r in readers] if isinstance(readers, list) else [text(readers)],
        pcsc_lite=_pick(data, used, "pcsc_lite", "pcsc_lite_version", "pcsclite"),
        driver=_pick(data, used, "driver", "driver_version", "drivers"),
        os=_pick(data, used, "os", "platform"),
        python=_pick(data, used, "python", "python_version"),
    )
    bench.readers = [r for r in bench.readers if r]
    bench.extra = _extra(data, used)
    return bench


def _case_entries(run_dir: Path, results: list[CaseResult]) -> list[CaseEntry]:
    """Re-hash every evidence file now: a report never signs a digest it did not check."""
    entries: list[CaseEntry] = []
    for result in results:
        entry = CaseEntry(result=result)
        if result.evidence:
            path = safe_relative(run_dir, result.evidence)
            if not path.is_file():
                raise ReportError(f"case {result.id}: evidence file {result.evidence} is missing")
            actual = sha256_path(path)
            recorded = (result.evidence_sha256 or "").lower()
            if recorded and recorded != actual:
                raise ReportError(
                    f"case {result.id}: evidence file {result.evidence} has SHA-256 {actual}, "
                    f"but the run recorded {recorded} — it changed after the run"
                )
            entry.evidence_path = PurePosixPath(result.evidence.replace("\\", "/")).as_posix()
            entry.evidence_sha256 = actual
        entries.append(entry)
    return entries


def group_counts(cases: list[CaseEntry]) -> list[GroupCount]:
    groups: dict[str, dict[str, int]] = {}
    for case in cases:
        counts = groups.setdefault(case.result.group or "-", {v: 0 for v in VERDICTS})
        counts[case.verdict] += 1
    return [GroupCount(name, counts) for name, counts in groups.items()]


def privacy_text(privacy: Mapping[str, Any]) -> str:
    """The report's line on the privacy setting of the evidence (summary.json ``privacy``)."""
    if not privacy:
        return "未记录 not recorded"
    basis = f" ({privacy['basis']})" if privacy.get("basis") else ""
    if privacy.get("setting") == "on":
        shown = ("开 on — 持卡人个人数据项在证据中以加盐摘要代替 personal data items of the "
                 "cardholder are salted digests in the evidence")
    else:
        shown = "关 off — 证据含样品的全部数据项 the evidence shows every data item of the sample"
    sealed = privacy.get("sealed_to") or {}
    seal = ""
    if sealed:
        seal = (f"; 盐值已加密给 salt sealed to {sealed.get('subject', '?')} "
                f"(SHA-256 {str(sealed.get('fingerprint_sha256', ''))[:16]}…)")
    return f"{shown}{basis}{seal}"


def build_model(
    run_dir: Path | str, *, lab: Path | str | None = None, demo_key: bool = True
) -> ReportModel:
    """Read run_dir (summary.json, results.jsonl, evidence/) into a ReportModel."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"run directory {run_dir} does not exist")
    for name in ("summary.json", "results.jsonl"):
        if not (run_dir / name).is_file():
            raise ReportError(f"{run_dir}: {name} is missing — is this a run directory?")
    try:
        summary: RunSummary = read_summary(run_dir)
    except (ValueError, TypeError, KeyError) as exc:
        raise ReportError(f"{run_dir / 'summary.json'} is not a valid run summary: {exc}") from None
    try:
        results = read_results(run_dir)
    except (ValueError, TypeError, KeyError) as exc:
        raise ReportError(f"{run_dir / 'results.jsonl'} has an invalid line: {exc}") from None

    notes = [str(n) for n in summary.notes]
    cases = _case_entries(run_dir, results)
    scope = scope_of(summary.scope)
    conclusion = conclude(
        results, complete=summary.verdict is not Conclusion.INCOMPLETE, scope=scope
    )
    if not results:
        notes.append("results.jsonl holds no case: nothing was tested")
    statement_zh, statement_en = statement(
        conclusion, scope, results, int(summary.scope.get("catalogue") or 0)
    )
    if conclusion is not summary.verdict:
        notes.append(
            f"summary.json records {summary.verdict.value}; recomputed from the case results: "
            f"{conclusion.value} (the report states the recomputed conclusion)"
        )
    counts = {v: 0 for v in VERDICTS}
    for case in cases:
        counts[case.verdict] += 1

    sources = [
        Artifact(role="run", name=name, path=name, sha256=sha256_path(run_dir / name))
        for name in ("summary.json", "results.jsonl")
    ]
    started = _iso(summary.started, "started")
    stamp = started[:19].replace("-", "").replace(":", "").replace("T", "-") or "undated"
    report_id = f"RHC-{stamp}-{sources[1].sha256[:8].upper()}"
    untested_digest = sha256_path(UNTESTED_PATH) if UNTESTED_PATH.is_file() else ""
    return ReportModel(
        report_id=report_id,
        generated=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        lab=load_lab(lab),
        product=_product(summary.product or {}),
        samples=_samples(summary.card or {}),
        bench=_bench(summary.bench or {}),
        profile=_artifact("profile", summary.profile or {}),
        plan=_artifact("plan", summary.plan or {}),
        sources=sources,
        suite_version=summary.suite_version or "unknown",
        started=started,
        finished=_iso(summary.finished, "finished"),
        conclusion=conclusion.value,
        run_verdict=summary.verdict.value,
        counts=counts,
        groups=group_counts(cases),
        cases=cases,
        untested=load_untested(),
        untested_source=Artifact(
            role="untested",
            name="untested requirements",
            path=shipped_name(UNTESTED_PATH),
            sha256=untested_digest,
        ),
        demo_key=demo_key,
        notes=notes,
        privacy=privacy_text(summary.privacy or {}),
        title_zh=TITLES[scope][0],
        title_en=TITLES[scope][1],
        scope=scope.value,
        statement_zh=statement_zh,
        statement_en=statement_en,
    )
