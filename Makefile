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
# `pip install pretix-forge`: the release build, linked statically (scripts/static-link.sh) and
# packaged as a manylinux wheel by `pretix-forge package-self`.
# Its own scratch folder: it builds beside the debug build's suites (see `test`).
RELEASE_SCRATCH := .build-release
# The binary the wheel ships: the release product without the two ELF sections in which builds
# of one commit in two folders differ (.swift_modhash, module hashes the Swift compiler writes
# and nothing reads at run time, and the linker's build id, a digest over them); without them
# any checkout packages the same bytes.
RELEASE_FORGE := $(RELEASE_SCRATCH)/pretix-forge
STATIC_PKG_CONFIG := $(RELEASE_SCRATCH)/static-pkgconfig
# The licences of everything the release binary links, collected from its link map; the wheel ships them.
RELEASE_LICENSES := $(RELEASE_SCRATCH)/licenses
TOOL_WHEEL = $(wildcard $(CURDIR)/dist/pretix_forge-$(shell $(RELEASE_FORGE) --version)-*.whl)

# The suites `make test` runs, in this order; each is also `make test-<suite>` on its own.
# Tests/README.md says what each proves, what it needs and how long it takes.
# realpretix (sqlite, newest pretix) is not among them: production runs that suite on PostgreSQL
# with the newest pretix, and compat on sqlite with the oldest.
SUITES := swift vectors simulator generated compat production cluster ledger body-signed browser demo python wheel
# The suites that install the tool's own wheel.
WHEEL_SUITES := python wheel

.PHONY: run test deps deps-build deps-dist deps-test build dist golden docs vectors clean bench bench-cluster soak suite-dist $(SUITES:%=test-%)

# What building and running the tool needs: nothing else is installed by `make run`.
deps-build:
	@scripts/install-deps.sh system build

# What the static release build needs besides: the archives of the libraries it links in.
deps-dist: deps-build
	@scripts/install-deps.sh system dist

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

## pretix-forge's own wheel in dist/: the static release binary, for `pip install pretix-forge`.
# Last, the wheel's and the binary's sizes against their targets (scripts/dist_size.py).
dist: deps-dist
	@# Linked afresh every time, so that the link map static-link.sh asks for is this binary's.
	rm -f $(RELEASE_SCRATCH)/release/pretix-forge
	PKG_CONFIG_PATH=$(CURDIR)/$(STATIC_PKG_CONFIG) swift build -c release --scratch-path $(RELEASE_SCRATCH) \
		$$(scripts/static-link.sh $(STATIC_PKG_CONFIG) $(RELEASE_SCRATCH))
	objcopy --remove-section=.swift_modhash --remove-section=.note.gnu.build-id $(RELEASE_SCRATCH)/release/pretix-forge $(RELEASE_FORGE)
	scripts/licenses.py $(RELEASE_SCRATCH) $(RELEASE_LICENSES)
	$(RELEASE_FORGE) package-self --licenses $(RELEASE_LICENSES) --out dist
	@python3 scripts/dist_size.py "$$(ls -t dist/pretix_forge-$$($(RELEASE_FORGE) --version)-*.whl | head -n 1)"

## Build the tool and run the main job on the embedded default config.
run: build
	$(FORGE) generate
	$(FORGE) build --out dist
	@echo "default plugin tree: build/pretix-noderails-1.0.0/   sdist, wheel, SHA256SUMS: dist/"

## Every suite in order; stops at the first red one and names it.
# The wheel's static release build (make dist, minutes of compiling) runs beside the first suites
# at the lowest CPU priority, so it takes only the CPU they leave idle; the suites that install the
# wheel come last and wait for it. Its output is in build/dist.log.
test: deps-test deps-dist build
	@rm -rf $(REPORTS) && mkdir -p build
	@setsid nice -n 19 $(MAKE) --no-print-directory dist > build/dist.log 2>&1 & dist=$$!; \
	trap 'kill -- -$$dist 2>/dev/null' EXIT; \
	for suite in $(SUITES); do \
		if [ -n "$$dist" ] && [[ " $(WHEEL_SUITES) " == *" $$suite "* ]]; then \
			echo "== waiting for make dist (build/dist.log)"; \
			wait $$dist || { cat build/dist.log; echo "make test: make dist failed; run it alone with: make dist"; exit 1; }; \
			dist=""; tail -n 1 build/dist.log; \
		fi; \
		echo "== make test-$$suite"; started=$$(date +%s); \
		$(MAKE) --no-print-directory test-$$suite PREPARED=1 || { \
			echo "make test: suite '$$suite' failed; run it alone with: make test-$$suite"; exit 1; }; \
		echo "== test-$$suite passed in $$(( $$(date +%s) - started )) s"; \
	done; \
	echo "make test: all suites passed ($(SUITES))"
	@# A skip or xfail in any suite fails the run unless Tests/Support/count_skips.py explains it;
	@# so does a missing report, or one that holds no test.
	$(PYTHON) Tests/Support/count_skips.py $(addprefix $(REPORTS)/,$(addsuffix .xml,$(SWIFT_REPORTS) $(PYTEST_REPORTS)))

# JUnit XML of every pytest run and every `swift test`, read by count_skips.py at the end of
# `make test` (absolute: some suites run from their own folder). A report missing from these
# lists' files fails the run.
REPORTS := $(CURDIR)/build/test-reports
SWIFT_REPORTS = swift vectors
PYTEST_REPORTS = python wheel simulator generated realpretix-oldest generated-oldest \
	$(addprefix unit-,$(CLAIMED_PYTHONS)) realpretix-postgresql production cluster ledger realpretix-body-signed generated-body-signed \
	browser accessibility-blockfest demo

# Inside `make test` the set-up above ran once; a suite run alone does it first.
SETUP := $(if $(PREPARED),,deps-test build)
# The suites that install the tool's own wheel.
WHEEL_SETUP := $(if $(PREPARED),,dist)

# Swift unit, golden and property tests (the property test checks rendered trees with pretix's Django).
# --xunit-output X.xml: SwiftPM writes Swift Testing's results to X-swift-testing.xml (and
# XCTest's, of which there are none, to X.xml); count_skips.py reads both.
test-swift: $(SETUP)
	@mkdir -p $(REPORTS) && rm -f $(REPORTS)/swift.xml $(REPORTS)/swift-swift-testing.xml
	PRETIX_PYTHON=$(PRETIX_VENV)/bin/python swift test --skip WebhookVectorTests --xunit-output $(REPORTS)/swift.xml
	@# swift test passes with a test disabled, or with none run at all: the report tells.
	python3 Tests/Support/count_skips.py $(REPORTS)/swift.xml

# The shared HMAC vectors: current with their generator, and our Swift HMAC and the generated
# webhook.py both agree with every one.
test-vectors: $(SETUP)
	python3 Tests/Vectors/generate_vectors.py --check
	@mkdir -p $(REPORTS) && rm -f $(REPORTS)/vectors.xml $(REPORTS)/vectors-swift-testing.xml
	swift test --filter WebhookVectorTests --xunit-output $(REPORTS)/vectors.xml
	python3 Tests/Support/count_skips.py $(REPORTS)/vectors.xml

# The CLI as users run it: init/generate/build/check, packaging read by pip, uv and a strict zip
# reader, the plugin's own repository and its workflows, `make run` itself.
test-python: $(SETUP) $(WHEEL_SETUP)
	PRETIX_FORGE=$(FORGE) PRETIX_FORGE_WHEEL=$(TOOL_WHEEL) $(PYTHON) -m pytest Tests/Python -q --junitxml=$(REPORTS)/python.xml

# pretix-forge's wheel: its manylinux tag (auditwheel), every command from a fresh venv with no
# Swift on PATH, the same output as the debug build, byte-identical when packaged twice.
test-wheel: $(SETUP) $(WHEEL_SETUP)
	PRETIX_FORGE=$(FORGE) PRETIX_FORGE_WHEEL=$(TOOL_WHEEL) $(PYTHON) -m pytest Tests/Wheel -q --junitxml=$(REPORTS)/wheel.xml

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

# pretix as its deployment guide runs it: redis (cache, sessions, celery broker), gunicorn with 3 workers,
# 2 celery workers, `runperiodic` twice at once, on a throwaway PostgreSQL; Place order in celery, a
# celery worker killed mid-refund, redis restarted mid-burst, the status rate limit across workers.
test-cluster: $(SETUP) suite-dist
	PRETIX_VENV=$(CURDIR)/$(PRETIX_VENV) REALPRETIX_PLUGIN=$(CURDIR)/$(SUITE_DIST)/pretix_noderails-1.0.0.tar.gz \
		Tests/Cluster/run.sh --junitxml=$(REPORTS)/cluster.xml

# The model-based ledger test (Tests/RealPretix/ledger_machine.py): Hypothesis interleaves customers,
# NodeRails (webhooks late, twice, reordered, dropped, wrongly signed; API faults), the organiser's
# refunds, time and the periodic task against pretix on a throwaway PostgreSQL and checks pretix's
# books against NodeRails' after every step. Bounded and derandomized here (LEDGER_EXAMPLES,
# LEDGER_STEPS); `make soak` runs it for SOAK_MINUTES with fresh seeds.
LEDGER := PRETIX_VENV=$(CURDIR)/$(PRETIX_VENV) REALPRETIX_PLUGIN=$(CURDIR)/$(SUITE_DIST)/pretix_noderails-1.0.0.tar.gz \
	$(PRETIX_VENV)/bin/python Tests/Production/with_postgres.py -- Tests/RealPretix/run.sh ledger_machine.py
test-ledger: $(SETUP) suite-dist
	$(LEDGER) --junitxml=$(REPORTS)/ledger.xml

## Webhook load through the cluster (gunicorn 3 workers, 2 celery workers, redis) against 3 single-process
## workers, plugin from a fresh sdist; not part of `make test` (figures in Tests/README.md).
bench-cluster: $(SETUP) suite-dist
	$(PRETIX_VENV)/bin/pip install -q --no-deps --force-reinstall $(SUITE_DIST)/pretix_noderails-1.0.0.tar.gz
	$(PRETIX_VENV)/bin/python Tests/Production/with_postgres.py --database bench -- $(PRETIX_VENV)/bin/python scripts/bench_webhooks.py
	$(PRETIX_VENV)/bin/python Tests/Production/with_postgres.py --database bench -- $(PRETIX_VENV)/bin/python scripts/bench_webhooks.py --cluster

## The ledger machine for SOAK_MINUTES (default 30) with fresh seeds, each printed; not part of `make test`.
SOAK_MINUTES ?= 30
soak: $(SETUP) suite-dist
	SOAK_MINUTES=$(SOAK_MINUTES) $(LEDGER) -s

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
	rm -rf .build $(RELEASE_SCRATCH) build dist

## Start-up, speed against setuptools, 1/10/100 variants: the binary from the wheel (prints a table).
BENCH_VENV := build/bench-venv
bench: deps dist
	rm -rf $(BENCH_VENV)
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --no-index --disable-pip-version-check $(TOOL_WHEEL)
	PRETIX_FORGE=$(BENCH_VENV)/bin/pretix-forge $(PYTHON) scripts/bench.py
	# Webhook load against pretix on PostgreSQL, with the plugin from a fresh sdist.
	rm -rf build/bench-dist
	$(BENCH_VENV)/bin/pretix-forge build --out build/bench-dist
	$(PRETIX_VENV)/bin/pip install -q --no-deps --force-reinstall build/bench-dist/pretix_noderails-1.0.0.tar.gz
	$(PRETIX_VENV)/bin/python scripts/bench_webhooks.py
