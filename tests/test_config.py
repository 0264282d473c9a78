import json

from typer.testing import CliRunner

from bridge.cli import app
from bridge.config import CloudSettings, Settings


def test_cloud_settings_read_standard_names_from_env_file(tmp_path) -> None:
    env = tmp_path / "sim.env"
    env.write_text(
        "AWS_REGION=eu-west-1\nIOTHUB_CONNECTION_STRING=HostName=h;SharedAccessKey=c2VjcmV0\n"
    )
    cloud = CloudSettings(_env_file=env)
    assert cloud.AWS_REGION == "eu-west-1"
    assert cloud.IOTHUB_CONNECTION_STRING is not None
    assert "c2VjcmV0" in cloud.IOTHUB_CONNECTION_STRING.get_secret_value()


def test_bridge_settings_use_prefix_and_nested_delimiter(monkeypatch) -> None:
    monkeypatch.setenv("BRIDGE_STORE__DSN", "postgresql://db/bridge")
    monkeypatch.setenv("BRIDGE_HTTP__PORT", "9999")
    settings = Settings()
    assert settings.store.dsn == "postgresql://db/bridge"
    assert settings.http.port == 9999


def test_config_show_redacts_secrets(tmp_path) -> None:
    env = tmp_path / "sim.env"
    env.write_text(
        "AWS_SECRET_ACCESS_KEY=topsecret\nIOTHUB_CONNECTION_STRING=HostName=h;SharedAccessKey=abc\n"
    )
    result = CliRunner().invoke(app, ["config", "show", "--env-file", str(env)])
    assert result.exit_code == 0, result.output
    assert "topsecret" not in result.output
    assert "SharedAccessKey=abc" not in result.output
    shown = json.loads(result.output)
    assert shown["cloud"]["AWS_SECRET_ACCESS_KEY"] == "**********"
