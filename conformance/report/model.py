"""The report model: everything a signed report states, built from a run directory.

The run directory (conformance/results.py) is the input contract. summary.json's free-form dicts
are read defensively: the keys below are used when present, any other key is kept and shown as
an extra property, so a new field written by the plugin reaches the report without code here.

  card     atr, chip_serial, card_number_factor, reader  (or card["samples"]: a list of such)
  product  vendor, name, version, ics (dict or list), ics_path, ics_sha256
  profile  name, version, path, sha256      plan  name, version, path, sha256
  bench    readers (list or str), pcsc_lite, driver, os, python
  lab, submission, bench_file   checked copies of the lab's files (conformance/lab.py schemas)
  started_at, finished_at, timezone, report_number   lab-local times, the run's number

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

from conformance.lab import (
    BenchFile,
    Equipment,
    LabFile,
    LabFileError,
    SubmissionFile,
    from_record,
    load_bench,
    load_lab,
    load_submission,
    local_time,
    now_in,
)
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
TERMINAL_TITLES = {
    Scope.CERTIFICATION: ("居民健康卡终端符合性检测报告",
                          "Resident Health Card — Terminal Conformance Test Report"),
    Scope.PARTIAL: ("居民健康卡终端检测报告（部分检测，非认证）",
                    "Resident Health Card — Terminal Test Report (partial run) — not a "
                    "certification"),
}
"""The same for a terminal run (product kind ``terminal``): the suite played the card."""
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
class IcsRow:
    """One line of the ICS as printed: a Chinese and an English label, and the value."""

    key: str
    zh: str
    en: str
    value: str


@dataclass
class Product:
    vendor: str = ""
    name: str = ""
    version: str = ""
    model: str = ""
    ics: list[tuple[str, str]] = field(default_factory=list)
    ics_rows: list[IcsRow] = field(default_factory=list)
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
    title: str = ""
    """What the file is called in words (a profile's title_zh / title_en)."""


@dataclass
class CaseEntry:
    """One case as reported: the run's CaseResult with its evidence digest re-checked."""

    result: CaseResult
    evidence_path: str = ""
    evidence_sha256: str = ""

    @property
    def verdict(self) -> str:
        return str(self.result.verdict)

    def field(self, name: str) -> str:
        """A CaseResult field of the requirement texts ("" when the run did not record it)."""
        return str(getattr(self.result, name, "") or "")

    @property
    def requirement_zh(self) -> str:
        return self.field("requirement_zh") or self.field("purpose_zh")

    @property
    def requirement_en(self) -> str:
        return self.field("requirement_en") or self.result.purpose

    @property
    def source(self) -> str:
        """What the case cites: the requirement's source (a clause of the standard, or the
        profile's [choice] by name and version)."""
        return self.field("source")

    @property
    def choice_notes(self) -> list[tuple[str, str]]:
        """(zh, en) per [choice] of the profile and per interpretation the verdict rests on."""
        r = self.result
        return list(zip(r.choice_notes_zh, r.choice_notes, strict=True))

    @property
    def expected(self) -> str:
        return self.field("expected") or " / ".join(self.result.expected_sw)

    @property
    def measured(self) -> str:
        return self.field("measured")

    @property
    def reason_zh(self) -> str:
        return self.field("reason_zh")


@dataclass
class Finding:
    """A FAIL, INCONCLUSIVE or ERROR case with the lines of its evidence that show it."""

    entry: CaseEntry
    excerpt: list[str]
    omitted: int = 0
    """Logical exchanges of the evidence before the excerpt (not shown)."""


@dataclass
class EquipmentRow:
    """An item of the bench file, joined with what PC/SC reported for the run's reader."""

    item: Equipment
    calibration_ok: bool | None
    """None: no calibration due date (not calibrated equipment)."""
    used: bool = False
    pcsc_name: str = ""
    driver: str = ""
    pcsc_lite: str = ""


@dataclass
class Deviation:
    """A departure from the method's conditions, recorded in the report (ISO/IEC 17025
    §7.8.2.1 m): an environment reading out of limits, a calibration past due, a sample that
    does not match its submission."""

    zh: str
    en: str


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
    lab: LabFile
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
    terminal: bool = False
    """A terminal run: the samples are the suite's test cards, not the product."""
    scope: str = Scope.CERTIFICATION.value
    statement_zh: str = ""
    statement_en: str = ""
    """The conclusion as a sentence that says what the run was (results.statement)."""
    timezone: str = ""
    lab_source: Artifact | None = None
    submission: SubmissionFile | None = None
    submission_source: Artifact | None = None
    bench_file: BenchFile | None = None
    bench_source: Artifact | None = None
    equipment: list[EquipmentRow] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    evidence_manifest: str = ""
    """SHA-256 of the evidence digest list (`evidence_lines`): the one digest the PDF prints."""
    evidence_count: int = 0

    @property
    def issued_date(self) -> str:
        return self.generated[:10]

    @property
    def test_dates(self) -> str:
        """The lab-local dates of testing: one date, or first — last."""
        first, last = self.started[:10], self.finished[:10]
        return first if not last or first == last else f"{first} — {last}"

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


# ---------------------------------------------------------------------------------------------
# loaders


def _load_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{what} {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ReportError(f"{what} {path} is not valid YAML: {exc}") from None


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
    art.title = " / ".join(t for t in (_pick(data, used, "title_zh"),
                                       _pick(data, used, "title_en")) if t)
    if not art.sha256 and art.path:
        candidate = Path(art.path)
        if not candidate.is_absolute():
            candidate = PACKAGE_DIR / candidate
        if candidate.is_file():
            art.sha256 = sha256_path(candidate)
    return art


ICS_LABELS: dict[str, tuple[str, str]] = {
    "kind": ("卡类型", "Card type"),
    "model": ("型号", "Model"),
    "sample": ("样品数据", "Sample data"),
    "notes": ("说明", "Notes"),
}
SAMPLE_DATA = {"test": "测试数据（虚构持卡人） test data", "issued": "已发行卡数据 issued card"}


def _product(data: dict[str, Any]) -> Product:
    """The ICS as printed: every optional feature of the profile with 支持/不支持, then the
    declared properties under Chinese/English labels; the file by name and digest."""
    used: set[str] = {"ics", "features", "feature_names", "sample_pin"}
    product = Product(
        vendor=_pick(data, used, "vendor", "manufacturer"),
        name=_pick(data, used, "name", "product"),
        version=_pick(data, used, "version", "cos_version"),
        model=_pick(data, set(), "model"),
        ics=_pairs(data.get("ics")),
        ics_path=_pick(data, used, "ics_path", "path", "source"),
        ics_sha256=_pick(data, used, "ics_sha256", "sha256"),
    )
    declared = [str(f) for f in data.get("features") or []]
    names = data.get("feature_names") or {}
    rows = [
        IcsRow(f"features.{key}", *(label if len(label) == 2 else (key, key)),
               "支持 supported" if key in declared else "不支持 not supported")
        for key, label in ((k, list(v)) for k, v in names.items())
    ]
    rows += [IcsRow(f"features.{key}", key, key, "支持 supported")
             for key in declared if key not in names]
    for key, (zh, en) in ICS_LABELS.items():
        if data.get(key) not in (None, ""):
            used.add(key)
            value = text(data[key])
            rows.append(IcsRow(key, zh, en, SAMPLE_DATA.get(value, value) if key == "sample"
                               else value.strip()))
    if product.ics_path:
        digest = f" · SHA-256 {product.ics_sha256}" if product.ics_sha256 else ""
        rows.append(IcsRow("source", "ICS 文件", "ICS file",
                           PurePosixPath(product.ics_path.replace("\\", "/")).name + digest))
    product.ics_rows = rows
    product.extra = _extra(data, used | {"model"})
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


def _lab(summary: RunSummary, path: Path | str | None) -> tuple[LabFile, Artifact]:
    """The lab of the report: the file given now, else the one the run recorded, else DEMO."""
    if path or not summary.lab:
        source = Path(path) if path else DEMO_LAB
        lab = load_lab(source)
        return lab, Artifact("lab", lab.code, path=shipped_name(source),
                             sha256=sha256_path(source))
    lab = from_record(LabFile, summary.lab, "lab")
    return lab, _recorded("lab", lab.code, summary.lab)


def _recorded(role: str, name: str, data: Mapping[str, Any]) -> Artifact:
    source = str(data.get("source", ""))
    return Artifact(role, name, path=shipped_name(Path(source)) if source else "",
                    sha256=str(data.get("sha256", "")))


def _optional_file(
    recorded: dict[str, Any], path: Path | str | None, model: type[Any], loader: Any, role: str
) -> tuple[Any, Artifact | None]:
    """A submission or bench file: the one given now, else the run's copy, else none."""
    if path:
        source = Path(path)
        return loader(source), Artifact(role, source.name, path=shipped_name(source),
                                        sha256=sha256_path(source))
    if recorded:
        return from_record(model, recorded, role), _recorded(role, role, recorded)
    return None, None


def _equipment(bench_file: BenchFile | None, bench: Bench, day: dt.date) -> list[EquipmentRow]:
    rows = []
    for item in bench_file.equipment if bench_file else []:
        due = item.calibration_due
        row = EquipmentRow(item=item, calibration_ok=None if due is None else due >= day)
        if item.kind == "reader" and item.pcsc_reader and item.pcsc_reader in bench.readers:
            row.used, row.pcsc_name = True, item.pcsc_reader
            row.driver, row.pcsc_lite = bench.driver, bench.pcsc_lite
        else:
            row.used = item.kind != "reader"
        rows.append(row)
    return rows


def _deviations(
    bench_file: BenchFile | None,
    equipment: list[EquipmentRow],
    submission: SubmissionFile | None,
    samples: list[Sample],
    pcsc: bool,
    readers: list[str],
    day: dt.date,
) -> list[Deviation]:
    out: list[Deviation] = []
    if bench_file is not None:
        from conformance.lab import QUANTITIES

        for name, reading in bench_file.environment.readings():
            if not reading.within:
                zh, en = QUANTITIES[name]
                limits = f"{reading.min:g}–{reading.max:g} {reading.unit}"
                out.append(Deviation(
                    f"环境条件超出限值：{zh} {reading.value:g} {reading.unit}（限值 {limits}）",
                    f"environment out of limits: {en.lower()} {reading.value:g} {reading.unit} "
                    f"(limits {limits})"))
        for row in equipment:
            if row.calibration_ok is False and row.used:
                item = row.item
                out.append(Deviation(
                    f"设备 {item.id}（{item.model}，序列号 {item.serial}）校准有效期至 "
                    f"{item.calibration_due}，检测日 {day} 已过期",
                    f"equipment {item.id} ({item.model}, serial {item.serial}): calibration "
                    f"due {item.calibration_due}, past due on the test date {day}"))
        listed = {row.pcsc_name for row in equipment if row.pcsc_name}
        for reader in readers if pcsc else []:
            if reader not in listed:
                out.append(Deviation(
                    f"本次使用的读卡器“{reader}”不在测试台文件的设备清单中",
                    f"the reader {reader!r} used in the run is not in the bench file's "
                    "equipment list"))
    if submission is not None:
        tested = {s.chip_serial for s in samples if s.chip_serial}
        for sample in submission.samples:
            if sample.chip_serial and tested and sample.chip_serial not in tested:
                out.append(Deviation(
                    f"样品 {sample.id} 登记的芯片序列号 {sample.chip_serial} 与被测卡"
                    f"（{', '.join(sorted(tested))}）不符",
                    f"sample {sample.id} is registered with chip serial {sample.chip_serial}, "
                    f"the card tested reports {', '.join(sorted(tested))}"))
    return out


EXCERPT_LINES = 6
"""How many logical exchanges of a failing case's evidence the report prints."""


def _exchange(entry: Mapping[str, Any]) -> str:
    """One evidence entry as a line: > command  < response, long data shortened."""
    if "command" not in entry:  # an evidence format this report does not know: as recorded
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True)
        return line if len(line) <= 110 else line[:109] + "…"
    seq = f"#{entry.get('seq')}" if entry.get("seq") is not None else ""
    if not entry.get("command"):
        return f"{seq} · {entry.get('note') or entry.get('error') or ''}".strip()
    response = str(entry.get("response") or "")
    if len(response) > 44:
        response = f"{response[:32]}…{response[-4:]} ({(len(response) - 4) // 2} B)"
    line = f"{seq} > {entry['command']}  < {response or '—'}"
    if entry.get("error"):
        line += f"  !! {entry['error']}"
    elif entry.get("note"):
        line += f"  ({entry['note']})"
    return line


def _finding(run_dir: Path, entry: CaseEntry) -> Finding:
    """The case's last logical exchanges (or those around its first error): what the
    verdict rests on, with the whole trace a digest away in the evidence file."""
    if not entry.evidence_path:
        return Finding(entry, [])
    lines: list[dict[str, Any]] = []
    for raw in safe_relative(run_dir, entry.evidence_path).read_text("utf-8").splitlines():
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("parent") is None:
            lines.append(value)
    logical = [e for e in lines if e.get("command") or e.get("error") or "command" not in e]
    errors = [i for i, e in enumerate(logical) if e.get("error")]
    end = errors[0] + 2 if errors else len(logical)
    start = max(0, end - EXCERPT_LINES)
    return Finding(entry, [_exchange(e) for e in logical[start:end]], omitted=start)


def evidence_lines(cases: list[CaseEntry]) -> str:
    """The evidence digests in sha256sum format, by path: what `evidence_manifest` hashes."""
    rows = sorted((c.evidence_path, c.evidence_sha256) for c in cases if c.evidence_path)
    return "".join(f"{digest}  {path}\n" for path, digest in rows)


def build_model(
    run_dir: Path | str,
    *,
    lab: Path | str | None = None,
    submission: Path | str | None = None,
    bench: Path | str | None = None,
    demo_key: bool = True,
    number: bool = False,
) -> ReportModel:
    """Read run_dir (summary.json, results.jsonl, evidence/) into a ReportModel.

    lab, submission and bench replace the files the run recorded in summary.json. With
    `number`, a run that recorded no report number (or another lab's) takes the next one of
    the lab's sequence; without, such a report is marked UNNUMBERED.
    """
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
    try:
        lab_file, lab_source = _lab(summary, lab)
        sub, sub_source = _optional_file(summary.submission, submission, SubmissionFile,
                                         load_submission, "submission")
        bench_file, bench_source = _optional_file(summary.bench_file, bench, BenchFile,
                                                  load_bench, "bench")
    except LabFileError as exc:
        raise ReportError(str(exc)) from None
    zone = lab_file.tz

    notes = [str(n) for n in summary.notes]
    cases = _case_entries(run_dir, results)
    scope = scope_of(summary.scope)
    terminal = (summary.product or {}).get("kind") == "terminal"
    titles = (TERMINAL_TITLES if terminal else TITLES).get(scope, TITLES[scope])
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
    started = _lab_time(summary.started_at or summary.started, "started", zone)
    finished = _lab_time(summary.finished_at or summary.finished, "finished", zone)
    generated = now_in(zone)
    day = dt.date.fromisoformat(started[:10]) if started else generated.date()
    lab_path = lab or (summary.lab or {}).get("source") or None
    report_id = _report_number(summary, lab_file, lab_path, bool(lab), number, generated,
                               run_dir)
    untested_digest = sha256_path(UNTESTED_PATH) if UNTESTED_PATH.is_file() else ""
    samples = _samples(summary.card or {})
    bench_model = _bench(summary.bench or {})
    equipment = _equipment(bench_file, bench_model, day)
    digests = evidence_lines(cases)
    return ReportModel(
        report_id=report_id,
        generated=generated.isoformat(),
        lab=lab_file,
        product=_product(summary.product or {}),
        samples=samples,
        bench=bench_model,
        profile=_artifact("profile", summary.profile or {}),
        plan=_artifact("plan", summary.plan or {}),
        sources=sources,
        suite_version=summary.suite_version or "unknown",
        started=started,
        finished=finished,
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
        title_zh=titles[0],
        title_en=titles[1],
        terminal=terminal,
        scope=scope.value,
        statement_zh=statement_zh,
        statement_en=statement_en,
        timezone=lab_file.timezone,
        lab_source=lab_source,
        submission=sub,
        submission_source=sub_source,
        bench_file=bench_file,
        bench_source=bench_source,
        equipment=equipment,
        deviations=_deviations(bench_file, equipment, sub, samples,
                               (summary.card or {}).get("kind") == "pcsc",
                               bench_model.readers, day),
        findings=[_finding(run_dir, c) for c in cases
                  if c.verdict in ("FAIL", "INCONCLUSIVE", "ERROR")],
        evidence_manifest=sha256_bytes(digests.encode("utf-8")),
        evidence_count=digests.count("\n"),
    )


UNNUMBERED = "UNNUMBERED"


def _report_number(
    summary: RunSummary, lab: LabFile, lab_path: Path | str | None, replaced: bool,
    number: bool, now: dt.datetime, run_dir: Path,
) -> str:
    """The run's number if it took one from this lab, else (with `number`) the next one.
    lab_path: where the lab file is (a relative state_dir is relative to it); replaced: the
    lab was given anew, not the one the run recorded."""
    recorded_code = str((summary.lab or {}).get("code", ""))
    if summary.report_number and (not replaced or recorded_code == lab.code):
        return summary.report_number
    if not number:
        return UNNUMBERED
    from conformance.sequence import next_report_number

    try:
        return next_report_number(lab, now, lab_path=lab_path, run=str(run_dir))
    except LabFileError as exc:
        raise ReportError(str(exc)) from None


def _lab_time(value: str, what: str, zone: Any) -> str:
    if not value:
        return ""
    try:
        return local_time(value, zone).isoformat()
    except ValueError:
        raise ReportError(f"summary.json: {what} {value!r} is not an ISO 8601 date-time") from None
