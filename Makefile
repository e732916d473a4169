# make test: set up .venv and run the test suite. make demo: set up and run the demo.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# Test fixtures beside the project (launch stack, vision_msgs, cv_bridge), installed where
# present; `ICNET_FIXTURES= make test` sets up without them (docs/setup.md).
ICNET_FIXTURES ?= ../shared
FIXTURE_FILES := $(wildcard $(addprefix $(ICNET_FIXTURES)/,$(addsuffix /install.sh,ros2-launch ros2-msgs cv-bridge) \
	$(addsuffix /wheels/*.whl,ros2-launch ros2-msgs cv-bridge)))

.PHONY: setup setup-jazzy test demo bench clean

$(STAMP): requirements.txt requirements-workspace.txt requirements-dev.txt requirements-train.txt \
		requirements-ros.txt constraints.txt constraints-workspace.txt setup.py scripts/setup_env.sh $(FIXTURE_FILES)
	PYTHON=$(PYTHON) VENV=$(VENV) ICNET_FIXTURES="$(ICNET_FIXTURES)" scripts/setup_env.sh
	touch $@

setup: $(STAMP)

# ROS 2 Jazzy (LTS) in a second environment from the registries' wheels, torch linked from
# .venv (scripts/setup_jazzy_env.sh): `make test` runs the tests marked jazzy there too.
# Where the registries do not serve those wheels it says so and the Jazzy run is skipped;
# `ICNET_JAZZY=0 make test` leaves Jazzy out.
JAZZY_VENV := .venv-jazzy
JAZZY_STAMP := $(JAZZY_VENV)/.installed
ICNET_JAZZY ?= 1
JAZZY_TESTS := test/ros test/reliability

$(JAZZY_STAMP): $(STAMP) requirements-ros-jazzy.txt scripts/setup_jazzy_env.sh
	PYTHON=$(PYTHON) VENV=$(VENV) JAZZY_VENV=$(JAZZY_VENV) scripts/setup_jazzy_env.sh && touch $@ || [ $$? -eq 3 ]

setup-jazzy: $(JAZZY_STAMP)

test: $(STAMP) $(if $(filter 1,$(ICNET_JAZZY)),$(JAZZY_STAMP))
	$(VENV)/bin/python -m pytest -n auto --dist loadfile
	@if [ "$(ICNET_JAZZY)" != 1 ]; then echo "make test: Jazzy tests left out (ICNET_JAZZY=$(ICNET_JAZZY))"; \
	elif [ -f $(JAZZY_STAMP) ]; then echo "make test: the tests marked jazzy on the ROS 2 Jazzy wheels ($(JAZZY_VENV))"; \
		$(JAZZY_VENV)/bin/python -m pytest -n auto --dist loadfile -m jazzy $(JAZZY_TESTS); \
	else echo "make test: Jazzy tests skipped: $(JAZZY_VENV) could not be built (see scripts/setup_jazzy_env.sh above)"; fi

# The main job on the embedded default: a sample bag of synthetic street frames (seeds the demo
# weights never saw), replayed live over DDS through segmentation_node with the demo weights.
DEMO_DIR ?= runs/demo
demo: $(STAMP)
	rm -rf $(DEMO_DIR)/sample_bag $(DEMO_DIR)/report
	$(VENV)/bin/icnet-make-sample-bag $(DEMO_DIR)/sample_bag --frames 50 --rate 10 --size 256 512
	ROS_AUTOMATIC_DISCOVERY_RANGE=$${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST} \
	$(VENV)/bin/icnet-eval $(DEMO_DIR)/sample_bag --mode live --rate 1 --threads 1 \
		--topic /camera/image_raw --label-topic /camera/labels \
		--output $(DEMO_DIR)/report --strip $(DEMO_DIR)/demo_strip.png
	@echo "image strip (input | colour mask | overlay): $(DEMO_DIR)/demo_strip.png"

# A quick model-only look (minutes on a CPU); docs/performance.md has the full commands.
bench: $(STAMP)
	$(VENV)/bin/icnet-bench model --models sub124,baseline --sizes 513x1025 --precisions fp32 \
		--backends eager,onnxruntime --repeats 5 --no-memory

clean:
	rm -rf $(VENV) $(JAZZY_VENV) build install log .pytest_cache
