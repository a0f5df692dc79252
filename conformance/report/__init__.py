"""The signed conformance report: run directory → model → HTML/PDF → XML with the manifest of
every file (XAdES-BES) → PDF signed (PAdES); verify.

Public API (the CLI calls these; every failure is a ReportError with a clear message):

  write_report(run_dir, *, lab=None, submission=None, bench=None, key=None, cert=None,
               pkcs12=None, passphrase=None, pdf=True) -> ReportPaths
                                                  report.xml + report.html (+ report.pdf)
  verify_report(path, trust=None) -> VerifyResult  run dir or report.xml; never raises;
                                                  .status VALID | UNTRUSTED | INVALID
  build_allure(run_dir) -> Path                   allure-report/index.html (npx allure@3)
"""

from conformance.report.allure import AllureUnavailable, build_allure
from conformance.report.model import ReportError, ReportModel, build_model
from conformance.report.verify import VerifyResult, verify_report
from conformance.report.writer import ReportPaths, write_report

__all__ = [
    "AllureUnavailable",
    "ReportError",
    "ReportModel",
    "ReportPaths",
    "VerifyResult",
    "build_allure",
    "build_model",
    "verify_report",
    "write_report",
]
