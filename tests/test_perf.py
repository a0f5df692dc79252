"""PERF cases: measurements with limits from the plan, the slow-card fault, timing shapes."""

from __future__ import annotations

import json
import time

import pytest
from casekit import group_cases, new_card, run_cases, runner_for

from conformance.cases.framework import OWN
from conformance.config import ConfigError, build_config
from conformance.model.products import load_plan
from conformance.results import CaseResult, Verdict
from conformance.transport.inprocess import InProcessTransport

FIELDS = {"name", "value", "limit", "comparison", "unit", "median", "p95", "max", "n", "floor",
          "floor_basis"}


def perf_cases() -> tuple:
    return group_cases("PERF")


def test_perf_cases_pass_on_the_reference_card_with_their_measurements() -> None:
    results = run_cases(perf_cases())
    assert len(results) == 11
    for result in results.values():
        assert result.verdict is Verdict.PASS, (result.id, result.reason)
        (m,) = result.measurements
        assert set(m) == FIELDS
        assert m["n"] == load_plan("performance").parameters["performance"]["repetitions"]
        if m["unit"] == "ms":
            assert m["comparison"] == "<=" and 0 < m["median"] <= m["limit"]
            assert m["median"] <= m["p95"] <= m["max"]
        else:
            assert m["unit"] == "B/s" and m["comparison"] == ">="
            assert m["median"] >= m["p95"] >= m["max"] >= m["limit"]  # worst last
        assert m["floor"] > 0


def test_slow_card_fails_every_perf_case_by_its_own_measurement() -> None:
    results = run_cases(perf_cases(), faults=["slow_card"])
    for result in results.values():
        assert result.verdict is Verdict.FAIL, (result.id, result.reason)
        assert result.failed_at == OWN
        (m,) = result.measurements
        assert (m["value"] > m["limit"]) if m["comparison"] == "<=" else (m["value"] < m["limit"])
        # the median is settled once most repetitions missed: the rest are not taken
        assert m["n"] == 3
        assert m["unit"] in result.reason and f"{m['limit']:g}" in result.reason


def test_slow_card_leaves_other_cases_passing() -> None:
    cases = [c for c in group_cases("ATR", "CMD") if c.id.startswith(("ATR-", "CMD-SEL-"))]
    results = run_cases(cases[:12], faults=["slow_card"])
    assert {r.verdict for r in results.values()} <= {Verdict.PASS, Verdict.NOT_APPLICABLE}


def test_measurements_round_trip_in_results_jsonl() -> None:
    (result,) = run_cases([c for c in perf_cases() if c.id == "PERF-CMD-004"]).values()
    again = CaseResult.from_dict(json.loads(result.to_json()))
    assert again.measurements == result.measurements


def test_a_plan_without_performance_is_a_harness_error() -> None:
    card = new_card()
    runner = runner_for(card)
    runner.plan = runner.plan.model_copy(update={"parameters": {}})
    result = runner.run(perf_cases()[0])
    assert result.verdict is Verdict.ERROR and "performance" in result.reason


def test_card_latency_and_byte_cost_shape_the_virtual_card() -> None:
    config = build_config({"card_latency_ms": "5", "card_byte_us": "100"})
    card = config.virtual_card
    assert card is not None and card.latency_s == 0.005 and card.byte_s == 1e-4
    transport = InProcessTransport(card)  # its reset took time too
    before, started = transport.wire_s, time.monotonic()
    transport.transmit(bytes.fromhex("00A4000002DDF1"))  # 7 + 2 bytes: 5.9 ms
    assert 0.0055 <= transport.wire_s - before <= time.monotonic() - started


@pytest.mark.parametrize(("values", "needle"), [
    ({"card_latency_ms": "-1"}, "--card-latency-ms"),
    ({"card_byte_us": "fast"}, "--card-byte-us"),
    ({"reader": "Virtual PCD 00 00", "card_latency_ms": "5"}, "--card-latency-ms"),
])
def test_bad_timing_shapes_are_one_line_errors(values, needle) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_config(values)
