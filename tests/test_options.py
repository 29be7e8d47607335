"""Options: flag beats environment beats default; bad values are named; secrets stay hidden;
a settings class is declared once and gives flags, variables and typed attributes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from common.kafka_settings import (
    COMPRESSION_OPTION,
    KafkaConnection,
    client_config,
    producer_config,
)
from common.options import (
    Secret,
    SettingsError,
    describe,
    float_between,
    group,
    int_between,
    options_of,
    parse_settings,
    positive_int,
    setting,
    shared,
)


@dataclass(frozen=True)
class Example:
    kafka: KafkaConnection = group(KafkaConnection)
    batch_size: int = setting(positive_int, 256, "max messages per batch")
    compression_type: str = shared(COMPRESSION_OPTION)
    watch: tuple[str, ...] = setting(lambda v: tuple(v.split(",")), (), "x", flag="watchlist")
    port: int = setting(int_between(0, 9), 1, "y", env="EXAMPLE_PORT")


def parse(argv: list[str], env: dict[str, str]) -> Example:
    return parse_settings(Example, argv, "example", environ=env)


def test_flag_wins_over_environment_over_default() -> None:
    assert parse([], {}).batch_size == 256
    assert parse([], {"STOCKSENT_BATCH_SIZE": "64"}).batch_size == 64
    assert parse(["--batch-size", "8"], {"STOCKSENT_BATCH_SIZE": "64"}).batch_size == 8


def test_a_declaration_names_its_flag_and_variable() -> None:
    named = {o.name: (o.flag, o.env) for o in options_of(Example)}
    assert named["bootstrap_servers"] == ("--bootstrap-servers", "STOCKSENT_BOOTSTRAP_SERVERS")
    assert named["watch"] == ("--watchlist", "STOCKSENT_WATCHLIST")
    assert named["port"] == ("--port", "STOCKSENT_EXAMPLE_PORT")
    assert parse(["--watchlist", "a,b"], {"STOCKSENT_EXAMPLE_PORT": "3"}).watch == ("a", "b")
    assert parse([], {"STOCKSENT_EXAMPLE_PORT": "3"}).port == 3


def test_bad_value_names_the_flag_or_variable_and_value() -> None:
    with pytest.raises(SettingsError, match=r"--batch-size: 'abc' is not valid"):
        parse(["--batch-size", "abc"], {})
    with pytest.raises(
        SettingsError, match=r"STOCKSENT_BATCH_SIZE: '0' is not valid: must be >= 1"
    ):
        parse([], {"STOCKSENT_BATCH_SIZE": "0"})
    with pytest.raises(SettingsError, match=r"STOCKSENT_SECURITY_PROTOCOL: 'TLS' is not one of"):
        parse([], {"STOCKSENT_SECURITY_PROTOCOL": "TLS"})
    with pytest.raises(SettingsError, match=r"'10' is not valid: must be between 0 and 9"):
        parse(["--port", "10"], {})


@pytest.mark.parametrize(
    ("parser", "text", "reason"),
    [
        (int_between(1), "0", "must be >= 1"),
        (int_between(0, 65535), "65536", "must be between 0 and 65535"),
        (float_between(0, low_open=True), "0", "must be > 0"),
        (float_between(0), "-0.5", "must be >= 0"),
        (float_between(0, 1, low_open=True, high_open=True), "1", "between 0 and 1 (exclusive)"),
        (float_between(0, 86_400, low_open=True), "86401", "must be between 0 and 86400"),
    ],
)
def test_range_parsers_refuse_the_ends_they_exclude(parser, text: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parser(text)


def test_range_parsers_accept_their_ends() -> None:
    assert int_between(0, 65535)("65535") == 65535
    assert float_between(0, 86_400, low_open=True)("86400") == 86_400.0
    assert float_between(0)("0") == 0.0


def test_secret_never_printed() -> None:
    values = parse(
        ["--sasl-mechanism", "PLAIN", "--sasl-username", "u"],
        {"STOCKSENT_SASL_PASSWORD": "hunter2"},
    )
    assert isinstance(values.kafka.sasl_password, Secret)
    assert "hunter2" not in repr(values) and "hunter2" not in str(values)
    assert "hunter2" not in describe(values) and "sasl_password = ********" in describe(values)
    assert client_config(values.kafka)["sasl_plain_password"] == "hunter2"


def test_password_file_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret_file = tmp_path / "pw"
    secret_file.write_text("s3cret\n")
    values = parse(["--sasl-mechanism", "PLAIN", "--sasl-password-file", str(secret_file)], {})
    assert client_config(values.kafka)["sasl_plain_password"] == "s3cret"


def test_producer_is_idempotent_and_waits_for_all() -> None:
    config = producer_config(parse(["--bootstrap-servers", "a:1,b:2"], {}).kafka)
    assert config["bootstrap_servers"] == ["a:1", "b:2"]
    assert config["acks"] == "all" and config["enable_idempotence"] is True


def test_reconnect_backoff_is_capped_at_a_second_like_the_java_client() -> None:
    config = client_config(parse([], {}).kafka)
    assert config["reconnect_backoff_max_ms"] == 1000


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_type_reaches_the_producer_and_its_codec_is_installed(codec: str) -> None:
    import kafka.codec
    from kafka import KafkaProducer

    values = parse(["--compression-type", codec], {})
    config = producer_config(values.kafka, values.compression_type)
    assert config["compression_type"] == codec
    assert getattr(kafka.codec, f"has_{codec}")()  # else the producer refuses the setting
    assert KafkaProducer.DEFAULT_CONFIG["compression_type"] is None
    assert "compression_type" not in producer_config(parse([], {}).kafka)


def test_an_unknown_compression_type_is_named() -> None:
    with pytest.raises(SettingsError, match="brotli"):
        parse([], {"STOCKSENT_COMPRESSION_TYPE": "brotli"})


def test_a_class_built_directly_has_typed_defaults() -> None:
    from stream.learner_cli import LearnerSettings

    assert LearnerSettings(model_store="/store").every == 6 * 3600.0
    assert KafkaConnection(bootstrap_servers="b:1").connect_timeout == 10.0


def test_an_unknown_flag_is_one_error_naming_it_and_the_closest_flag() -> None:
    from common.options import parse_flags, parser_for

    parser = parser_for(Example, "example", allow_abbrev=False)
    with pytest.raises(SettingsError) as raised:
        parse_flags(parser, ["--batch-siz", "8"])
    assert str(raised.value) == (
        "unrecognized arguments: --batch-siz 8 (did you mean --batch-size?)"
    )
    with pytest.raises(SettingsError, match=r"^unrecognized arguments: --zzz$"):
        parse_flags(parser, ["--zzz"])
    assert parse_flags(parser, ["--batch-size=8"]).batch_size == "8"


@dataclass(frozen=True)
class Needs:
    data: str = setting(str, "", "input", env="NEEDS_DATA")
    out: str | None = setting(str, None, "output")
    width: int = setting(positive_int, 3, "w")

    def __post_init__(self) -> None:
        from common.options import require

        require(self, "data", "out")


def test_require_names_every_unset_flag_and_its_variable() -> None:
    with pytest.raises(SettingsError) as raised:
        parse_settings(Needs, [], "needs", environ={})
    assert (
        str(raised.value) == "--data, --out: required (or set STOCKSENT_NEEDS_DATA, STOCKSENT_OUT)"
    )
    with pytest.raises(SettingsError, match=r"^--out: required \(or set STOCKSENT_OUT\)$"):
        parse_settings(Needs, ["--data", "x"], "needs", environ={})
    given = parse_settings(Needs, ["--out", "o"], "needs", environ={"STOCKSENT_NEEDS_DATA": "d"})
    assert (given.data, given.out) == ("d", "o")


def test_help_lists_the_choices_of_an_option() -> None:
    from common.options import parser_for

    text = parser_for(Example, "example").format_help()
    assert "(PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)" in " ".join(text.split())


@dataclass(frozen=True)
class Prefixed:
    env_prefix: ClassVar[str] = "cmd_"

    kafka: KafkaConnection = group(KafkaConnection)
    batch_size: int = setting(positive_int, 256, "max messages per batch")
    compression_type: str = shared(COMPRESSION_OPTION)
    watch: tuple[str, ...] = setting(lambda v: tuple(v.split(",")), (), "x", flag="watchlist")
    port: int = setting(int_between(0, 9), 1, "y", env="EXAMPLE_PORT")


def test_a_class_env_prefix_names_its_own_settings_variables_only() -> None:
    env = {option.name: option.env for option in options_of(Prefixed)}
    assert env["batch_size"] == "STOCKSENT_CMD_BATCH_SIZE"
    assert env["watch"] == "STOCKSENT_CMD_WATCHLIST"  # the flag's name, as without a prefix
    assert env["port"] == "STOCKSENT_EXAMPLE_PORT"  # an explicit env stays
    plain = {option.name: option.env for option in options_of(Example)}
    assert env["compression_type"] == plain["compression_type"]  # shared: one variable
    assert env["bootstrap_servers"] == plain["bootstrap_servers"]  # a group's own
    settings = parse_settings(Prefixed, [], "cmd", environ={"STOCKSENT_CMD_BATCH_SIZE": "8"})
    assert settings.batch_size == 8
