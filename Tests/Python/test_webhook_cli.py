"""`pretix-forge webhook sign`: what it signs verifies with the generated webhook.py. What `webhook
send` sends is tested through the wheel's binary (Tests/Wheel/test_wheel.py), which ships it."""

import importlib.util
import os

import pytest

from conftest import DEFAULT_CONFIG

SECRET = "whsec_cli-test-not-a-real-secret"


def parse_signed(output: bytes):
    head, body = output.split(b"\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.decode().splitlines())
    return headers, body.removesuffix(b"\n")


def _load(path):
    """A module of the generated tree by path: webhook.py and conf.py import nothing of their package."""
    spec = importlib.util.spec_from_file_location(f"{path.stem}_{path.parent.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def generated_webhook(run_forge, tmp_path):
    def load(config=None):
        out = tmp_path / f"tree-{config.stem if config else 'stock'}"
        run_forge("generate", "--out", out, *(["--config", config] if config else []))
        return _load(out / "pretix_noderails" / "webhook.py"), _load(out / "pretix_noderails" / "conf.py")

    return load


@pytest.mark.parametrize("scheme,unit", [("timestamp.body", "ms"), ("body", "s")])
def test_signed_output_verifies_with_generated_webhook(run_forge, generated_webhook, tmp_path, scheme, unit):
    config = tmp_path / f"{scheme.replace('.', '-')}-{unit}.toml"
    config.write_text(DEFAULT_CONFIG.read_text().replace('signature_payload = "timestamp.body"', f'signature_payload = "{scheme}"')
                      .replace('timestamp_unit = "ms"', f'timestamp_unit = "{unit}"'))
    webhook, conf = generated_webhook(config)
    # The generated plugin verifies with its rendered settings (conf.py), as its webhook view does.
    assert (conf.SIGNATURE_PAYLOAD, conf.TIMESTAMP_UNIT) == (scheme, unit)
    plugin = {"payload_scheme": conf.SIGNATURE_PAYLOAD, "timestamp_unit": conf.TIMESTAMP_UNIT,
              "tolerance_seconds": conf.TOLERANCE_SECONDS}
    env = {**os.environ, "NODERAILS_WEBHOOK_SECRET": SECRET}
    result = run_forge("webhook", "sign", "--config", config, "--type", "payment_intent.captured", "--amount", "12.50", "--at", "1700000000",
                       env=env)
    headers, body = parse_signed(result.stdout.encode())
    verdict = webhook.verify_signature(SECRET, body, headers["x-noderails-signature"], headers["x-noderails-timestamp"], 1700000000.0, **plugin)
    assert verdict == (True, "ok")
    assert webhook.verify_signature("whsec_other", body, headers["x-noderails-signature"], headers["x-noderails-timestamp"], 1700000000.0,
                                   **plugin).accepted is False


def test_secret_comes_only_from_environment_or_file(run_forge, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NODERAILS_WEBHOOK_SECRET"}
    missing = run_forge("webhook", "sign", env=env, check=False)
    assert missing.returncode == 1 and "NODERAILS_WEBHOOK_SECRET" in missing.stderr
    assert run_forge("webhook", "sign", "--secret", SECRET, env=env, check=False).returncode == 1
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    from_file = run_forge("webhook", "sign", "--secret-file", secret_file, "--at", "1700000000", env=env)
    from_env = run_forge("webhook", "sign", "--at", "1700000000", env={**env, "NODERAILS_WEBHOOK_SECRET": SECRET})
    assert from_file.stdout == from_env.stdout
