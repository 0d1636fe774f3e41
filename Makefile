# pretix-forge: the two set-up commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV := .venv
PYTHON := $(VENV)/bin/python
PRETIX_VENV := .venvs/pretix
FORGE := .build/debug/pretix-forge

.PHONY: run test deps build golden vectors clean bench pretix-suites

deps:
	@scripts/install-deps.sh system
	@scripts/install-deps.sh venv $(VENV) Tests/Python/requirements.txt
	@scripts/install-deps.sh venv $(PRETIX_VENV) Tests/Python/requirements-pretix.txt

build: deps
	swift build
	@test -x $(FORGE)

## Build the tool and run the main job on the embedded default config.
run: build
	$(FORGE) generate
	$(FORGE) build --out dist
	@echo "default plugin tree: build/pretix-noderails-1.0.0/   sdist, wheel, SHA256SUMS: dist/"

## Everything: Swift tests (with the HMAC vector harness), the CLI/packaging suites, then the
## plugin inside a real pretix (installed from the sdist just built) against the simulator.
test: build
	@scripts/install-deps.sh system nodejs  # the simulator's checkout script runs under node in its tests
	rm -rf $(REPORTS)
	python3 Tests/Vectors/generate_vectors.py --check
	PRETIX_PYTHON=$(PRETIX_VENV)/bin/python swift test
	PRETIX_FORGE=$(FORGE) $(PYTHON) -m pytest Tests/Python -q --junitxml=$(REPORTS)/python.xml
	$(MAKE) --no-print-directory pretix-suites
	# A skip or xfail in any suite above fails the run unless Tests/Support/count_skips.py explains it.
	$(PYTHON) Tests/Support/count_skips.py $(addprefix $(REPORTS)/,python.xml $(SUITE_REPORTS))

# JUnit XML of every pytest run, read by count_skips.py (absolute: some suites run from their folder).
REPORTS := $(CURDIR)/build/test-reports
SUITE_REPORTS := simulator.xml realpretix.xml plugin.xml realpretix-postgresql.xml production.xml \
	realpretix-body-seconds.xml plugin-body-seconds.xml browser.xml accessibility-blockfest.xml demo.xml

SUITE_DIST := build/suite-dist
# Tells the real-pretix suite which second variant is installed beside the stock plugin, and
# that its side-by-side tests must run (fail, not skip, if it is missing).
SIDE_BY_SIDE := REALPRETIX_SECOND_MODULE=pretix_acme_crypto REALPRETIX_SECOND_PROVIDER=acme_crypto \
	REALPRETIX_SECOND_WEBHOOK_PATH=acme-crypto REALPRETIX_REQUIRE_SIDE_BY_SIDE=1

pretix-suites: build
	rm -rf $(SUITE_DIST)
	$(FORGE) build --out $(SUITE_DIST)
	$(FORGE) build --config Examples/acme-tickets.toml --out $(SUITE_DIST)/acme
	$(PRETIX_VENV)/bin/python -m pytest Simulator/tests -q -p no:cacheprovider --junitxml=$(REPORTS)/simulator.xml
	# The stock plugin and a second branded variant, both from their sdists, side by side in one pretix.
	PRETIX_VENV=$(CURDIR)/$(PRETIX_VENV) $(SIDE_BY_SIDE) \
	REALPRETIX_PLUGIN=$(CURDIR)/$(SUITE_DIST)/pretix_noderails-1.0.0.tar.gz \
	REALPRETIX_EXTRA_PLUGINS=$(CURDIR)/$(SUITE_DIST)/acme/pretix_acme_crypto-1.0.0.tar.gz \
		Tests/RealPretix/run.sh --junitxml=$(REPORTS)/realpretix.xml
	# The tests the generated repository ships (tests/, with test_in_pretix.py), from the unpacked
	# sdist inside that pretix, as the repository's CI runs them: a missing pretix fails, not skips.
	rm -rf $(SUITE_DIST)/unpacked && mkdir -p $(SUITE_DIST)/unpacked
	tar -xzf $(SUITE_DIST)/pretix_noderails-1.0.0.tar.gz -C $(SUITE_DIST)/unpacked
	cd $(SUITE_DIST)/unpacked/pretix_noderails-1.0.0 && \
		PLUGIN_TESTS_REQUIRE_PRETIX=1 $(CURDIR)/$(PRETIX_VENV)/bin/python -m pytest -q -p no:cacheprovider tests \
		--junitxml=$(REPORTS)/plugin.xml
	# The same suite on a throwaway PostgreSQL, then concurrency, crash and lock-timeout tests
	# against several pretix worker processes sharing that database.
	PRETIX_VENV=$(CURDIR)/$(PRETIX_VENV) $(SIDE_BY_SIDE) REALPRETIX_JUNITXML=$(REPORTS)/realpretix-postgresql.xml \
		Tests/Production/run.sh --junitxml=$(REPORTS)/production.xml
	# A variant signing the raw body alone with timestamps in seconds (NodeRails' documented scheme):
	# the webhook suite inside pretix, then its own tests, from its sdist.
	sed -e 's/^signature_payload = .*/signature_payload = "body"/' -e 's/^timestamp_unit = .*/timestamp_unit = "s"/' \
		Examples/noderails.toml > $(SUITE_DIST)/body-seconds.toml
	grep -qx 'signature_payload = "body"' $(SUITE_DIST)/body-seconds.toml && grep -qx 'timestamp_unit = "s"' $(SUITE_DIST)/body-seconds.toml
	$(FORGE) build --config $(SUITE_DIST)/body-seconds.toml --out $(SUITE_DIST)/body-seconds
	PRETIX_VENV=$(CURDIR)/$(PRETIX_VENV) REALPRETIX_PLUGIN=$(CURDIR)/$(SUITE_DIST)/body-seconds/pretix_noderails-1.0.0.tar.gz \
		Tests/RealPretix/run.sh test_webhooks.py --junitxml=$(REPORTS)/realpretix-body-seconds.xml
	mkdir -p $(SUITE_DIST)/body-seconds/unpacked
	tar -xzf $(SUITE_DIST)/body-seconds/pretix_noderails-1.0.0.tar.gz -C $(SUITE_DIST)/body-seconds/unpacked
	cd $(SUITE_DIST)/body-seconds/unpacked/pretix_noderails-1.0.0 && \
		PLUGIN_TESTS_REQUIRE_PRETIX=1 $(CURDIR)/$(PRETIX_VENV)/bin/python -m pytest -q -p no:cacheprovider tests \
		--junitxml=$(REPORTS)/plugin-body-seconds.xml
	PRETIX_FORGE=$(CURDIR)/$(FORGE) $(PRETIX_VENV)/bin/python -m pytest Tests/Browser -q --junitxml=$(REPORTS)/browser.xml
	# Accessibility again for a branded variant: its logo, colours and template overlay.
	PRETIX_FORGE=$(CURDIR)/$(FORGE) E2E_FORGE_CONFIG=Examples/blockfest/forge.toml \
	E2E_FORGE_TEMPLATES=Examples/blockfest/templates \
		$(PRETIX_VENV)/bin/python -m pytest Tests/Browser/test_accessibility.py -q \
		--junitxml=$(REPORTS)/accessibility-blockfest.xml
	# pretix-forge demo as a user runs it: the cached environment created from scratch, a shop
	# served and bought from over HTTP, stopped and killed every way, Blockfest's screenshots.
	PRETIX_FORGE=$(CURDIR)/$(FORGE) $(PRETIX_VENV)/bin/python -m pytest Tests/Demo -q --junitxml=$(REPORTS)/demo.xml

## Refresh the golden copy of the default plugin tree after an intended template change.
golden: build
	$(FORGE) generate --out Tests/PretixForgeTests/Golden/default

## Regenerate the shared webhook signature vectors (deterministic).
vectors:
	python3 Tests/Vectors/generate_vectors.py

clean:
	rm -rf .build build dist

## Speed against setuptools, and 1/10/100 variants (release build; prints a table).
bench: deps
	swift build -c release
	PRETIX_FORGE=.build/release/pretix-forge $(PYTHON) scripts/bench.py
	# Webhook load against pretix on PostgreSQL, with the plugin from a fresh sdist.
	rm -rf build/bench-dist
	.build/release/pretix-forge build --out build/bench-dist
	$(PRETIX_VENV)/bin/pip install -q --no-deps --force-reinstall build/bench-dist/pretix_noderails-1.0.0.tar.gz
	$(PRETIX_VENV)/bin/python scripts/bench_webhooks.py
