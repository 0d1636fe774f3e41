"""pytest fixtures for the real-pretix suite; the helpers live in realpretix.py (imported by the tests)."""

from realpretix import (  # noqa: F401 - fixtures are collected from this namespace
    _pretix_test_settings,
    admin,
    configured,
    customer,
    http_timeout,
    shop,
    sim,
)
from sidebyside import both, sim_b  # noqa: F401 - the second variant's fixtures (test_side_by_side.py)


def pytest_report_header(config):
    import importlib

    from realpretix import MODULE
    try:
        mod = importlib.import_module(MODULE)
        where = '%s %s from %s' % (MODULE, getattr(mod, '__version__', '?'), mod.__file__.rsplit('/', 2)[0])
    except Exception as exc:  # reported, the tests then fail with the real error
        where = '%s not importable: %s' % (MODULE, exc)
    return 'plugin under test: ' + where
