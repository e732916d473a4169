# make test: set up .venv and run the test suite. make demo: set up and run the demo.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup test demo bench clean

$(STAMP): requirements.txt requirements-ros.txt constraints.txt setup.py scripts/setup_env.sh
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/setup_env.sh
	touch $@

setup: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

demo: $(STAMP)
	@echo "make demo arrives with the rosbag evaluation issue; see README.md"

clean:
	rm -rf $(VENV) build install log .pytest_cache
