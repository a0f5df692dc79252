# Shortcuts for the README commands (scripts/demo.sh, scripts/test.sh) where make is installed.

.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check .
