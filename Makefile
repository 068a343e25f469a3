# Two commands for a fresh machine: `make demo` and `make test`. Both run `setup` first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
REPORTS ?= reports

.PHONY: setup venv images browser up demo test test-unproven test-variants test-unit lint bench dist down clean

# Stack tests (files or test ids under tests/stack) not yet seen passing on a quiet machine at the
# current code, or seen failing there: `make test` leaves them out and `make test-unproven` runs
# them. One leaves this list when it passes every time.
# The vulnerable flood's catch needs the worker to drain slower than the api floods, so that the
# broker's memory alarm trips: in 2 of 4 runs on 2026-12-07 it did not (the scale model's trigger
# depends on the CPU the machine has to spare; the scenario's .md, fact 4).
UNPROVEN ?= test_incident_event_flood.py::test_vulnerable_flood_trips_the_memory_alarm_and_is_caught
# A scenario's variants beyond its one run per profile: `make test-variants` runs them.
VARIANTS ?= test_incident_queue_cluster.py::test_nodes_killed_at_once_come_back_through_force_boot_and_the_outbox_loses_nothing \
	test_incident_supportbee.py::test_a_wrapper_that_breaks_after_the_fetch_loses_taken_jobs_only_from_a_naive_queue

# `make test` runs the stack tests on this many pytest-xdist workers, each with a stack of its own
# (compose project <project>-gw0, -gw1, ...). Each stack is a 3-node RabbitMQ cluster and the app.
WORKERS ?= 2
OUTAGE_PROJECT ?= outage-lab
WORKER_STACKS := $(foreach n,$(shell seq 0 $$(($(WORKERS) - 1))),$(OUTAGE_PROJECT)-gw$(n))
# The stack test files, those whose tests take one to three minutes each first. The `alone` tests
# (the plugin runs them before the rest, in this order) start with the gateway throttling's: its
# 300 ms promise is judged on a store the floods have not yet filled (after two floods, 450,000
# keys, its steady Redis PING p99 was 173 ms and its hardened run deviated).
LONGEST_FIRST := $(addprefix tests/stack/,test_incident_gateway.py test_drill.py test_incident_queue_cluster.py \
	test_incident_live_upgrade.py test_wire_game_days.py test_incident_supportbee.py test_worker_crash.py)
STACK_TESTS := $(LONGEST_FIRST) $(filter-out $(LONGEST_FIRST),$(sort $(wildcard tests/stack/test_*.py)))

setup: venv images browser

# Debian's chromium and its driver, for the drill board's browser test (skipped, saying why, without them).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver) \
		|| echo "could not install chromium: the board's browser test will be skipped"; \
	else echo "no chromium and no apt-get as root: the board's browser test will be skipped"; fi

venv: $(VENV)/.installed

# pyproject.toml declares ranges; constraints.txt pins the versions this project is tested with.
$(VENV)/.installed: pyproject.toml constraints.txt services/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

images: venv
	$(BIN)/outage build

up: setup
	$(BIN)/outage up --no-build

demo: up
	$(BIN)/python -m harness.interfaces.demo --report-dir $(REPORTS)/demo

test: setup
	$(BIN)/ruff check harness faults services tests bench
	# The workers' stacks start while the unit tests run (they need no Docker); output waits in files.
	@mkdir -p $(REPORTS)
	pids=; for project in $(WORKER_STACKS); do \
		OUTAGE_PROJECT=$$project $(BIN)/outage up --no-build > $(REPORTS)/up-$$project.log 2>&1 & pids="$$pids $$!"; \
	done; \
	$(BIN)/pytest tests/unit -q -n $(WORKERS); unit=$$?; started=0; \
	for pid in $$pids; do wait $$pid || started=1; done; cat $(REPORTS)/up-*.log; \
	[ $$unit -eq 0 ] && [ $$started -eq 0 ]
	# Each worker runs its tests against its own stack, the longest files first so that the last
	# tests are short and both workers finish together; the stacks go down whatever the outcome,
	# while every run the stack tests made is judged again from its record alone, to the live verdict.
	$(BIN)/pytest $(STACK_TESTS) -q -n $(WORKERS) --dist worksteal --outage-stack-per-worker \
		--outage-use-running --outage-report-dir $(REPORTS)/runs --durations=25 --junitxml=$(REPORTS)/junit.xml \
		$(addprefix --deselect=tests/stack/,$(UNPROVEN) $(VARIANTS)); passed=$$?; \
	for project in $(WORKER_STACKS); do OUTAGE_PROJECT=$$project $(BIN)/outage down --volumes > /dev/null 2>&1 & done; \
	checked=0; if [ $$passed -eq 0 ]; then \
		$(BIN)/outage check --against-live $$(find $(REPORTS)/runs -name summary.json -printf '%h ') > $(REPORTS)/recheck.txt; \
		checked=$$?; fi; \
	wait; [ $$passed -eq 0 ] && [ $$checked -eq 0 ] && echo "every recorded run re-judged offline to its live verdict ($(REPORTS)/recheck.txt)"

test-unproven: up
	@[ -n "$(strip $(UNPROVEN))" ] || { echo "no unproven stack tests: make test runs them all"; exit 0; }; \
	$(BIN)/pytest $(addprefix tests/stack/,$(UNPROVEN)) -q --outage-use-running --outage-report-dir $(REPORTS)/runs --durations=20

test-variants: up
	$(BIN)/pytest $(addprefix tests/stack/,$(VARIANTS)) -q --outage-use-running --outage-report-dir $(REPORTS)/runs --durations=20

test-unit: venv
	$(BIN)/pytest tests/unit -q

lint: venv
	$(BIN)/ruff check harness faults services tests bench
	$(BIN)/ruff format --check harness faults services tests bench

bench: up
	$(BIN)/python bench/ratios.py

# The sdist and the wheel: everything `outage` needs ships in them (see "Installing from a wheel").
dist: venv
	$(BIN)/python -m build --outdir dist

down: venv
	$(BIN)/outage down --volumes

clean: down
	rm -rf $(VENV) $(REPORTS) dist
