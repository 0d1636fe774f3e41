# pretix-forge: the two set-up commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV := .venv
PYTHON := $(VENV)/bin/python
PRETIX_VENV := .venvs/pretix
# compat.toml: the oldest pretix the plugin claims runs in its own venv, on the Python listed
# there; the plugin's unit tests run on every claimed Python, each in .venvs/python-X.Y.
OLDEST_PRETIX_VENV := .venvs/pretix-oldest
# Read when used; an unreadable compat.toml stops make instead of running no version at all.
PRETIX_PYTHON_VERSION = $(or $(shell python3 scripts/compat.py pretix.python),$(error cannot read compat.toml))
CLAIMED_PYTHONS = $(or $(shell python3 scripts/compat.py python.versions),$(error cannot read compat.toml))
FORGE := .build/debug/pretix-forge

# The suites `make test` runs, in this order; each is also `make test-<suite>` on its own.
# Tests/README.md says what each proves, what it needs and how long it takes.
SUITES := swift vectors python simulator realpretix generated compat production body-signed browser demo

.PHONY: run test deps deps-build deps-test build golden docs vectors clean bench suite-dist $(SUITES:%=test-%)

# What building and running the tool needs: nothing else is installed by `make run`.
deps-build:
	@scripts/install-deps.sh system build

# What the suites need besides: the browser, PostgreSQL, the tools' and pretix's virtualenvs.
deps-test: deps-build
	@scripts/install-deps.sh system test
	@scripts/install-deps.sh venv $(VENV) Tests/Python/requirements.txt
	@# uv fills pretix's venv in seconds where pip takes minutes (uv is pinned in the tools' venv).
	@UV=$(VENV)/bin/uv scripts/install-deps.sh venv $(PRETIX_VENV) Tests/Python/requirements-pretix.txt \
		$(PRETIX_PYTHON_VERSION)
	@UV=$(VENV)/bin/uv scripts/install-deps.sh venv $(OLDEST_PRETIX_VENV) Tests/Python/requirements-pretix-oldest.txt \
		$(PRETIX_PYTHON_VERSION)
	@for version in $(CLAIMED_PYTHONS); do \
		UV=$(VENV)/bin/uv scripts/install-deps.sh venv .venvs/python-$$version Tests/Python/requirements-unit.txt $$version \
			|| exit 1; done

deps: deps-test

build: deps-build
	swift build
	@test -x $(FORGE)

## Build the tool and run the main job on the embedded default config.
run: build
	$(FORGE) generate
	$(FORGE) build --out dist
	@echo "default plugin tree: build/pretix-noderails-1.0.0/   sdist, wheel, SHA256SUMS: dist/"

## Every suite in order; stops at the first red one and names it.
test: deps-test build
	@rm -rf $(REPORTS)
	@for suite in $(SUITES); do \
		echo "== make test-$$suite"; started=$$(date +%s); \
		$(MAKE) --no-print-directory test-$$suite PREPARED=1 || { \
			echo "make test: suite '$$suite' failed; run it alone with: make test-$$suite"; exit 1; }; \
		echo "== test-$$suite passed in $$(( $$(date +%s) - started )) s"; \
	done; \
	echo "make test: all suites passed ($(SUITES))"
	@# A skip or xfail in any suite fails the run unless Tests/Support/count_skips.py explains it.
	$(PYTHON) Tests/Support/count_skips.py $(addprefix $(REPORTS)/,$(addsuffix .xml,$(PYTEST_REPORTS)))

# JUnit XML of every pytest run, read by count_skips.py at the end of `make test` (absolute:
# some suites run from their own folder). A report missing from this list's files fails the run.
REPORTS := $(CURDIR)/build/test-reports
PYTEST_REPORTS = python simulator realpretix generated realpretix-oldest generated-oldest \
	$(addprefix unit-,$(CLAIMED_PYTHONS)) realpretix-postgresql production realpretix-body-signed generated-body-signed \
	browser accessibility-blockfest demo

# Inside `make test` the set-up above ran once; a suite run alone does it first.
SETUP := $(if $(PREPARED),,deps-test build)

# Swift unit, golden and property tests (the property test checks rendered trees with pretix's Django).
test-swift: $(SETUP)
	PRETIX_PYTHON=$(PRETIX_VENV)/bin/python swift test --skip WebhookVectorTests

# The shared HMAC vectors: current with their generator, and our Swift HMAC and the generated
# webhook.py both agree with every one.
test-vectors: $(SETUP)
	python3 Tests/Vectors/generate_vectors.py --check
	swift test --filter WebhookVectorTests

# The CLI as users run it: init/generate/build/check, packaging read by pip, uv and a strict zip
# reader, the plugin's own repository and its workflows, `make run` itself.
test-python: $(SETUP)
	PRETIX_FORGE=$(FORGE) $(PYTHON) -m pytest Tests/Python -q --junitxml=$(REPORTS)/python.xml

test-simulator: $(SETUP)
	$(PRETIX_VENV)/bin/python -m pytest Simulator/tests -q -p no:cacheprovider --junitxml=$(REPORTS)/simulator.xml

SUITE_DIST := build/suite-dist
# Tells the real-pretix suite which second variant is installed beside the stock plugin, and
# that its side-by-side tests must run (fail, not skip, if it is missing).
SIDE_BY_SIDE := REALPRETIX_SECOND_MODULE=pretix_acme_crypto REALPRETIX_SECOND_PROVIDER=acme_crypto \
	REALPRETIX_SECOND_WEBHOOK_PATH=acme-crypto REALPRETIX_REQUIRE_SIDE_BY_SIDE=1
# The stock plugin and a second branded variant, both from their sdists, side by side in one pretix.
PLUGINS_UNDER_TEST := PRETIX_VENV=$(CURDIR)/$(PRETIX_VENV) $(SIDE_BY_SIDE) \
	REALPRETIX_PLUGIN=$(CURDIR)/$(SUITE_DIST)/pretix_noderails-1.0.0.tar.gz \
	REALPRETIX_EXTRA_PLUGINS=$(CURDIR)/$(SUITE_DIST)/acme/pretix_acme_crypto-1.0.0.tar.gz

suite-dist: $(if $(PREPARED),,build)
	rm -rf $(SUITE_DIST)
	$(FORGE) build --out $(SUITE_DIST)
	$(FORGE) build --config Examples/acme-tickets.toml --out $(SUITE_DIST)/acme

test-realpretix: $(SETUP) suite-dist
	$(PLUGINS_UNDER_TEST) Tests/RealPretix/run.sh --junitxml=$(REPORTS)/realpretix.xml

# $(call shipped-tests,SDIST,FOLDER,PRETIX_VENV,REPORT): the tests the generated repository ships
# (tests/, with test_in_pretix.py), from SDIST unpacked into FOLDER, inside that pretix, as the
# repository's CI runs them: a missing pretix fails, not skips.
shipped-tests = rm -rf $(2) && mkdir -p $(2) && tar -xzf $(1) -C $(2) && \
	cd $(2)/pretix_noderails-1.0.0 && PLUGIN_TESTS_REQUIRE_PRETIX=1 $(CURDIR)/$(3)/bin/python -m pytest -q \
	-p no:cacheprovider tests --junitxml=$(REPORTS)/$(4).xml

test-generated: $(SETUP) suite-dist
	$(PRETIX_VENV)/bin/pip install -q --no-deps --force-reinstall $(SUITE_DIST)/pretix_noderails-1.0.0.tar.gz
	$(call shipped-tests,$(SUITE_DIST)/pretix_noderails-1.0.0.tar.gz,$(SUITE_DIST)/unpacked,$(PRETIX_VENV),generated)

# The claims of compat.toml, from the same sdists: the real-pretix suite (sqlite, side by side) and
# the generated repository's tests inside the oldest pretix claimed, then the plugin's unit tests
# on every claimed Python (test_in_pretix.py, the one module needing pretix, ran just before).
COMPAT_UNPACKED := $(SUITE_DIST)/compat-unpacked
test-compat: $(SETUP) suite-dist
	$(subst $(PRETIX_VENV),$(OLDEST_PRETIX_VENV),$(PLUGINS_UNDER_TEST)) Tests/RealPretix/run.sh \
		--junitxml=$(REPORTS)/realpretix-oldest.xml
	$(call shipped-tests,$(SUITE_DIST)/pretix_noderails-1.0.0.tar.gz,$(COMPAT_UNPACKED),$(OLDEST_PRETIX_VENV),generated-oldest)
	for version in $(CLAIMED_PYTHONS); do \
		(cd $(COMPAT_UNPACKED)/pretix_noderails-1.0.0 && $(CURDIR)/.venvs/python-$$version/bin/python -m pytest -q \
			-p no:cacheprovider --ignore=tests/test_in_pretix.py tests --junitxml=$(REPORTS)/unit-$$version.xml) || exit 1; done

# The real-pretix suite again on a throwaway PostgreSQL, then concurrency, crash and lock-timeout
# tests against several pretix worker processes sharing that database.
test-production: $(SETUP) suite-dist
	$(PLUGINS_UNDER_TEST) REALPRETIX_JUNITXML=$(REPORTS)/realpretix-postgresql.xml \
		Tests/Production/run.sh --junitxml=$(REPORTS)/production.xml

# A variant signing the raw body alone with timestamps in seconds (NodeRails' documented scheme,
# the stock config otherwise): the webhook tests inside pretix, then its own tests, from its sdist.
BODY_SIGNED := $(SUITE_DIST)/body-signed
test-body-signed: $(SETUP)
	mkdir -p $(BODY_SIGNED)
	sed -e 's/^signature_payload = .*/signature_payload = "body"/' -e 's/^timestamp_unit = .*/timestamp_unit = "s"/' \
		Examples/noderails.toml > $(BODY_SIGNED).toml
	grep -qx 'signature_payload = "body"' $(BODY_SIGNED).toml && grep -qx 'timestamp_unit = "s"' $(BODY_SIGNED).toml
	$(FORGE) build --config $(BODY_SIGNED).toml --out $(BODY_SIGNED)
	PRETIX_VENV=$(CURDIR)/$(PRETIX_VENV) REALPRETIX_PLUGIN=$(CURDIR)/$(BODY_SIGNED)/pretix_noderails-1.0.0.tar.gz \
		Tests/RealPretix/run.sh test_webhooks.py --junitxml=$(REPORTS)/realpretix-body-signed.xml
	$(call shipped-tests,$(BODY_SIGNED)/pretix_noderails-1.0.0.tar.gz,$(BODY_SIGNED)/unpacked,$(PRETIX_VENV),generated-body-signed)

# A customer in headless Chromium (the suite builds and installs its own sdist), then
# accessibility again for a branded variant: its logo, colours and template overlay.
test-browser: $(SETUP)
	PRETIX_FORGE=$(CURDIR)/$(FORGE) $(PRETIX_VENV)/bin/python -m pytest Tests/Browser -q --junitxml=$(REPORTS)/browser.xml
	PRETIX_FORGE=$(CURDIR)/$(FORGE) E2E_FORGE_CONFIG=Examples/blockfest/forge.toml \
	E2E_FORGE_TEMPLATES=Examples/blockfest/templates \
		$(PRETIX_VENV)/bin/python -m pytest Tests/Browser/test_accessibility.py -q \
		--junitxml=$(REPORTS)/accessibility-blockfest.xml

# pretix-forge demo as a user runs it: the cached environment created from scratch, a shop
# served and bought from over HTTP, stopped and killed every way, Blockfest's screenshots.
test-demo: $(SETUP)
	PRETIX_FORGE=$(CURDIR)/$(FORGE) $(PRETIX_VENV)/bin/python -m pytest Tests/Demo -q --junitxml=$(REPORTS)/demo.xml

## Refresh the golden copy of the default plugin tree after an intended template change.
golden: build
	$(FORGE) generate --out Tests/PretixForgeTests/Golden/default

## Rewrite Examples/noderails.toml and the README's config reference from ConfigSchema.swift.
docs: build
	$(FORGE) init --force Examples/noderails.toml >/dev/null
	$(FORGE) reference | scripts/splice-reference.py README.md

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
