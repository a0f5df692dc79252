# The two commands of the README, plus setup.
#   make demo   set up, then run the whole suite against the virtual card and write a report
#   make test   set up, then lint and run the suite's own tests (starts pcscd when needed)

VENV := .venv
BIN  := $(VENV)/bin

.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	$(BIN)/rhc run --card virtual --out reports/out/demo

# ruff and pytest both run; either failing (pytest's "no tests collected", exit 5, included)
# fails the target. scripts/with-pcscd.sh stops the pcscd it started, whatever happens.
test: setup
	bash scripts/with-pcscd.sh bash -c '\
	    rc=0; \
	    $(BIN)/ruff check . || rc=1; \
	    $(BIN)/pytest -q || rc=1; \
	    exit $$rc'

lint:
	$(BIN)/ruff check .
