"""The certification run as one pytest module: one test item per case of the plan."""

from conformance.plugin import allure_labels, report_outcome


def test_case(rhc_case, rhc_run) -> None:
    result = rhc_run.run(rhc_case)
    allure_labels(rhc_case, result, rhc_run.out_dir)
    report_outcome(result)
