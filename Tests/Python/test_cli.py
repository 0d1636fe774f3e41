"""The CLI as a user meets it: help, errors without stack traces, nothing written on bad input."""

import shutil
import subprocess

from conftest import DEFAULT_CONFIG


def test_help_everywhere(run_forge):
    for command in ([], ["init"], ["generate"], ["build"], ["check"]):
        result = run_forge(*command, "--help")
        assert "USAGE" in result.stdout


def test_init_writes_the_embedded_default_and_refuses_to_overwrite(run_forge, tmp_path):
    target = tmp_path / "forge.toml"
    run_forge("init", target)
    assert target.read_text() == DEFAULT_CONFIG.read_text()
    again = run_forge("init", target, check=False)
    assert again.returncode == 1
    assert "--force" in again.stderr


def test_bad_config_is_reported_whole_and_writes_nothing(run_forge, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(DEFAULT_CONFIG.read_text().replace('module = "pretix_noderails"', 'module = "class"')
                      .replace('currency = "USD"', 'currency = "usd"') + '\napi_key = "nr_live_sk_x"\n')
    out = tmp_path / "out"
    result = run_forge("generate", "--config", config, "--out", out, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Fatal error" not in result.stderr
    for key in ("package.module", "noderails.currency", "branding.api_key"):
        assert key in result.stderr
    assert f"{config}:" in result.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_usage_errors_exit_1(run_forge):
    result = run_forge("generate", "--no-such-flag", check=False)
    assert result.returncode == 1
    assert "--no-such-flag" in result.stderr


def test_missing_config_file_is_a_clear_error(run_forge, tmp_path):
    result = run_forge("generate", "--config", tmp_path / "nope.toml", check=False)
    assert result.returncode == 1
    assert "cannot read the config file" in result.stderr and "pretix-forge init" in result.stderr


def test_binary_is_self_contained(forge, tmp_path):
    lonely = tmp_path / "bin" / "pretix-forge"
    lonely.parent.mkdir()
    shutil.copy2(forge, lonely)
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = subprocess.run([str(lonely), "generate", "--out", "tree"], cwd=work, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (work / "tree" / "pretix_noderails" / "payment.py").is_file()
    assert (work / "tree" / "pretix_noderails" / "locale" / "de" / "LC_MESSAGES" / "django.mo").is_file()


def test_generate_defaults_to_build_folder(run_forge, tmp_path):
    result = run_forge("generate", cwd=tmp_path)
    assert (tmp_path / "build" / "pretix-noderails-1.0.0" / "pyproject.toml").is_file()
    assert "build/pretix-noderails-1.0.0" in result.stdout


def test_generate_never_replaces_a_folder_it_did_not_write(run_forge, tmp_path):
    precious = tmp_path / "project"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    result = run_forge("generate", "--out", precious, check=False)
    assert result.returncode == 1 and "did not generate" in result.stderr
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    tree = tmp_path / "tree"
    run_forge("generate", "--out", tree)
    (tree / "stale.py").write_text("old")
    run_forge("generate", "--out", tree)
    assert not (tree / "stale.py").exists(), "a regenerated tree must not keep files the config no longer produces"
