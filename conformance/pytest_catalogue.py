"""The certification run as one pytest module: one test item per case of the plan.

`rhc run` collects it, and so does `pytest --pyargs conformance.pytest_catalogue --rhc-…`.
The rhc plugin parametrizes `rhc_case` with the plan's cases; `rhc_run` runs one on the card
under test and reports its verdict. This module imports nothing: the cases do not know it.
"""


def test_case(rhc_case, rhc_run) -> None:
    rhc_run(rhc_case)
