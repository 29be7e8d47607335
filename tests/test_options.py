"""Options: flag beats environment beats default; bad values are named; secrets stay hidden."""

from __future__ import annotations

import argparse

import pytest

from common.kafka_settings import (
    COMPRESSION_OPTION,
    CONNECTION_OPTIONS,
    client_config,
    producer_config,
)
from common.options import (
    Option,
    Secret,
    SettingsError,
    add_options,
    describe,
    positive_int,
    resolve,
)

OPTIONS = (
    *CONNECTION_OPTIONS,
    Option("batch_size", positive_int, 256, "max messages per batch"),
)


def parse(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    parser = argparse.ArgumentParser()
    add_options(parser, OPTIONS)
    return resolve(parser.parse_args(argv), OPTIONS, env)


def test_flag_wins_over_environment_over_default() -> None:
    assert parse([], {})["batch_size"] == 256
    assert parse([], {"STOCKSENT_BATCH_SIZE": "64"})["batch_size"] == 64
    assert parse(["--batch-size", "8"], {"STOCKSENT_BATCH_SIZE": "64"})["batch_size"] == 8


def test_bad_value_names_the_flag_or_variable_and_value() -> None:
    with pytest.raises(SettingsError, match=r"--batch-size: 'abc' is not valid"):
        parse(["--batch-size", "abc"], {})
    with pytest.raises(
        SettingsError, match=r"STOCKSENT_BATCH_SIZE: '0' is not valid: must be >= 1"
    ):
        parse([], {"STOCKSENT_BATCH_SIZE": "0"})
    with pytest.raises(SettingsError, match=r"STOCKSENT_SECURITY_PROTOCOL: 'TLS' is not one of"):
        parse([], {"STOCKSENT_SECURITY_PROTOCOL": "TLS"})


def test_secret_never_printed() -> None:
    values = parse(
        ["--sasl-mechanism", "PLAIN", "--sasl-username", "u"],
        {"STOCKSENT_SASL_PASSWORD": "hunter2"},
    )
    assert isinstance(values["sasl_password"], Secret)
    assert "hunter2" not in repr(values) and "hunter2" not in str(values)
    assert "hunter2" not in describe(values, OPTIONS)
    assert client_config(values)["sasl_plain_password"] == "hunter2"


def test_password_file_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret_file = tmp_path / "pw"
    secret_file.write_text("s3cret\n")
    values = parse(["--sasl-mechanism", "PLAIN", "--sasl-password-file", str(secret_file)], {})
    assert client_config(values)["sasl_plain_password"] == "s3cret"


def test_producer_is_idempotent_and_waits_for_all() -> None:
    config = producer_config(parse(["--bootstrap-servers", "a:1,b:2"], {}))
    assert config["bootstrap_servers"] == ["a:1", "b:2"]
    assert config["acks"] == "all" and config["enable_idempotence"] is True


def test_reconnect_backoff_is_capped_at_a_second_like_the_java_client() -> None:
    config = client_config(parse([], {}))
    assert config["reconnect_backoff_max_ms"] == 1000


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_type_reaches_the_producer_and_its_codec_is_installed(codec: str) -> None:
    import kafka.codec
    from kafka import KafkaProducer

    options = (*CONNECTION_OPTIONS, COMPRESSION_OPTION)
    parser = argparse.ArgumentParser()
    add_options(parser, options)
    values = resolve(parser.parse_args(["--compression-type", codec]), options, {})
    config = producer_config(values)
    assert config["compression_type"] == codec
    assert getattr(kafka.codec, f"has_{codec}")()  # else the producer refuses the setting
    assert KafkaProducer.DEFAULT_CONFIG["compression_type"] is None
    assert "compression_type" not in producer_config(parse([], {}))


def test_an_unknown_compression_type_is_named() -> None:
    options = (*CONNECTION_OPTIONS, COMPRESSION_OPTION)
    parser = argparse.ArgumentParser()
    add_options(parser, options)
    with pytest.raises(SettingsError, match="brotli"):
        resolve(parser.parse_args([]), options, {"STOCKSENT_COMPRESSION_TYPE": "brotli"})
