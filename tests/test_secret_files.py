"""Secrets mounted as files: NAME_FILE and the secrets directory, one way per setting."""

import json
import os

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.config import SECRET_SETTINGS, SECRETS_DIR_ENV, CloudSettings, Settings
from bridge.errors import ConfigError
from bridge.exit_codes import ExitCode

CONNECTION = "HostName=hub.example;SharedAccessKeyName=bridge;SharedAccessKey=c2VjcmV0LWtleQ=="


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No secret setting from the machine's environment, and an empty secrets directory."""
    for names in SECRET_SETTINGS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(f"{name}_FILE", raising=False)
    empty = tmp_path / "no-secrets"
    empty.mkdir()
    monkeypatch.setenv(SECRETS_DIR_ENV, str(empty))


def test_name_file_is_read_and_its_trailing_newline_dropped(tmp_path, monkeypatch):
    secret = tmp_path / "iothub"
    secret.write_text(CONNECTION + "\n")
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING_FILE", str(secret))
    cloud = CloudSettings(_env_file=None)
    assert cloud.IOTHUB_CONNECTION_STRING is not None
    assert cloud.IOTHUB_CONNECTION_STRING.get_secret_value() == CONNECTION


def test_only_one_trailing_newline_goes_and_crlf_counts_as_one(tmp_path, monkeypatch):
    key = tmp_path / "key"
    key.write_bytes(b"abc \r\n")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY_FILE", str(key))
    cloud = CloudSettings(_env_file=None)
    assert cloud.AWS_SECRET_ACCESS_KEY is not None
    assert cloud.AWS_SECRET_ACCESS_KEY.get_secret_value() == "abc "


def test_store_dsn_file_goes_into_the_nested_setting(tmp_path, monkeypatch):
    dsn = tmp_path / "dsn"
    dsn.write_text("postgresql://bridge:pa55word@db:5432/bridge\n")
    monkeypatch.setenv("BRIDGE_STORE__DSN_FILE", str(dsn))
    monkeypatch.setenv("BRIDGE_HTTP__PORT", "9999")  # other settings still come from the env
    settings = Settings(_env_file=None)
    assert settings.store.dsn == "postgresql://bridge:pa55word@db:5432/bridge"
    assert settings.http.port == 9999


def test_secrets_directory_files_are_named_after_the_setting(tmp_path, monkeypatch):
    directory = tmp_path / "secrets"
    directory.mkdir()
    (directory / "IOTHUB_CONNECTION_STRING").write_text(CONNECTION + "\n")
    (directory / "BRIDGE_STORE__DSN").write_text("postgresql://bridge:x@db/bridge")
    (directory / "unrelated").write_text("ignored")
    monkeypatch.setenv(SECRETS_DIR_ENV, str(directory))
    cloud = CloudSettings(_env_file=None)
    assert cloud.IOTHUB_CONNECTION_STRING is not None
    assert cloud.IOTHUB_CONNECTION_STRING.get_secret_value() == CONNECTION
    assert cloud.AZURE_STORAGE_CONNECTION_STRING is None  # no file: unset, not an error
    assert Settings(_env_file=None).store.dsn == "postgresql://bridge:x@db/bridge"


def test_name_file_pointing_into_the_secrets_directory_is_one_way(tmp_path, monkeypatch):
    directory = tmp_path / "secrets"
    directory.mkdir()
    (directory / "IOTHUB_CONNECTION_STRING").write_text(CONNECTION)
    monkeypatch.setenv(SECRETS_DIR_ENV, str(directory))
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING_FILE", str(directory / "IOTHUB_CONNECTION_STRING"))
    cloud = CloudSettings(_env_file=None)
    assert cloud.IOTHUB_CONNECTION_STRING is not None


def test_name_file_in_the_env_file_works_like_the_environment(tmp_path):
    secret = tmp_path / "storage"
    secret.write_text("DefaultEndpointsProtocol=https;AccountKey=a2V5\n")
    env = tmp_path / "bridge.env"
    env.write_text(f"AZURE_STORAGE_CONNECTION_STRING_FILE={secret}\nAWS_REGION=eu-west-1\n")
    cloud = CloudSettings(_env_file=env)
    assert cloud.AWS_REGION == "eu-west-1"
    assert cloud.AZURE_STORAGE_CONNECTION_STRING is not None
    assert cloud.AZURE_STORAGE_CONNECTION_STRING.get_secret_value().endswith("AccountKey=a2V5")


def test_a_setting_given_directly_and_as_a_file_is_an_error_naming_both(tmp_path, monkeypatch):
    secret = tmp_path / "iothub"
    secret.write_text(CONNECTION)
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING", CONNECTION)
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING_FILE", str(secret))
    with pytest.raises(ConfigError) as caught:
        CloudSettings(_env_file=None)
    said = str(caught.value)
    assert "IOTHUB_CONNECTION_STRING " in said
    assert "IOTHUB_CONNECTION_STRING_FILE" in said
    assert "c2VjcmV0" not in said


def test_env_file_value_and_secrets_directory_file_conflict(tmp_path, monkeypatch):
    directory = tmp_path / "secrets"
    directory.mkdir()
    (directory / "BRIDGE_STORE__DSN").write_text("postgresql://a:b@db/bridge")
    monkeypatch.setenv(SECRETS_DIR_ENV, str(directory))
    env = tmp_path / "bridge.env"
    env.write_text("BRIDGE_STORE__DSN=sqlite:///other.db\n")
    with pytest.raises(ConfigError, match=r"BRIDGE_STORE__DSN is set both directly and through"):
        Settings(_env_file=env)


def test_name_file_and_another_secrets_directory_file_conflict(tmp_path, monkeypatch):
    directory = tmp_path / "secrets"
    directory.mkdir()
    (directory / "AWS_ACCESS_KEY_ID").write_text("AKIA1")
    other = tmp_path / "key-id"
    other.write_text("AKIA2")
    monkeypatch.setenv(SECRETS_DIR_ENV, str(directory))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID_FILE", str(other))
    with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID_FILE") as caught:
        CloudSettings(_env_file=None)
    assert str(directory / "AWS_ACCESS_KEY_ID") in str(caught.value)


def test_a_secrets_dir_that_is_not_a_directory_is_said(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRETS_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"BRIDGE_SECRETS_DIR names .*missing, which is not a"):
        CloudSettings(_env_file=None)


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cli_says_a_missing_file_in_one_sentence_naming_variable_and_path(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "iothub"
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING_FILE", str(missing))
    result = run_cli("config", "show")
    assert result.exit_code == ExitCode.CONFIG_ERROR, result.output
    lines = result.output.strip().splitlines()
    assert lines == [
        (
            f"iot-bridge config show: IOTHUB_CONNECTION_STRING_FILE names {missing}, which "
            "cannot be read: No such file or directory"
        )
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_cli_says_an_unreadable_file(tmp_path, monkeypatch):
    secret = tmp_path / "dsn"
    secret.write_text("postgresql://a:b@db/bridge")
    secret.chmod(0)
    monkeypatch.setenv("BRIDGE_STORE__DSN_FILE", str(secret))
    result = run_cli("config", "show")
    assert result.exit_code == ExitCode.CONFIG_ERROR
    assert "Permission denied" in result.output
    assert "BRIDGE_STORE__DSN_FILE" in result.output


def test_cli_says_a_directory_or_an_empty_file(tmp_path, monkeypatch):
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING_FILE", str(tmp_path))
    result = run_cli("config", "show")
    assert result.exit_code == ExitCode.CONFIG_ERROR
    assert "which cannot be read: Is a directory" in result.output
    empty = tmp_path / "empty"
    empty.write_text("\n")
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING_FILE", str(empty))
    result = run_cli("config", "show")
    assert result.exit_code == ExitCode.CONFIG_ERROR
    assert result.output.strip().endswith(f"names {empty}, which is empty")


def test_cli_conflict_names_both_and_never_shows_the_value(tmp_path, monkeypatch):
    secret = tmp_path / "iothub"
    secret.write_text(CONNECTION)
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING", CONNECTION)
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING_FILE", str(secret))
    result = run_cli("config", "show")
    assert result.exit_code == ExitCode.CONFIG_ERROR
    assert "IOTHUB_CONNECTION_STRING is set both directly and through" in result.output
    assert "IOTHUB_CONNECTION_STRING_FILE" in result.output
    assert "c2VjcmV0" not in result.output


def test_secrets_dir_option_and_config_show_hides_file_values(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRETS_DIR_ENV)  # the option sets it (and monkeypatch restores it)
    monkeypatch.setenv(SECRETS_DIR_ENV, "")
    directory = tmp_path / "mounted"
    directory.mkdir()
    (directory / "IOTHUB_CONNECTION_STRING").write_text(CONNECTION + "\n")
    (directory / "BRIDGE_STORE__DSN").write_text("postgresql://bridge:pa55word@db:5432/bridge\n")
    result = run_cli("--secrets-dir", str(directory), "config", "show")
    assert result.exit_code == 0, result.output
    assert "c2VjcmV0" not in result.output
    assert "pa55word" not in result.output
    shown = json.loads(result.output)
    assert shown["cloud"]["IOTHUB_CONNECTION_STRING"] == "**********"
    assert shown["bridge"]["store"]["dsn"] == "postgresql://bridge:**********@db:5432/bridge"
