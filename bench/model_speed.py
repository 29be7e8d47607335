"""Model-only speed: messages/s of an exported model, naive calls, and the seed's configuration.

Other benchmarks import the functions; run as
`python -m bench.model_speed --model model/pretrained [--seconds 5] [--update-card]`
to print one JSON object (and, with --update-card, write the figures into the
model card).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from model.data import CANONICAL_SPLIT_DIR
from model.machine import limit_tensorflow_threads, machine_description

DEFAULT_BATCH_SIZES = (1, 32, 256, 2048)
SEED_SEQUENCE_LENGTH = 244
DATA_DIR = CANONICAL_SPLIT_DIR


def sample_messages(n: int = 4096, data_dir: Path = DATA_DIR) -> list[str]:
    """Real messages from the test split when present, else synthetic ones."""
    path = data_dir / "test.csv.gz"
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            rows = [r["message"] for r in itertools.islice(csv.DictReader(handle), n)]
        if rows:
            return rows
    words = [
        "$SPY",
        "calls",
        "puts",
        "moon",
        "crash",
        "🚀",
        "bought",
        "sold",
        "250.5",
        "!!",
        "?",
        "@trader",
        "https://x.co/1",
    ]
    return [" ".join(words[(i + j) % len(words)] for j in range(4 + i % 20)) for i in range(n)]


def _batches(messages: Sequence[Any], batch_size: int) -> list[Sequence[Any]]:
    reps = max(1, -(-batch_size // len(messages)))
    pool = list(messages) * reps
    count = max(1, len(messages) // batch_size)
    return [pool[i * batch_size : (i + 1) * batch_size] for i in range(count)]


def measure_throughput(
    predict: Callable[[Any], Any],
    batches: Sequence[Any],
    batch_size: int,
    seconds: float,
    callers: int = 1,
) -> dict[str, float]:
    """Call `predict` over `batches` (cycling) for about `seconds` after one warm-up
    call per batch shape, from `callers` threads at once (each from its own place in the
    cycle); returns messages/s of them all and the mean seconds per call."""
    for batch in batches[:2]:
        predict(batch)
    calls = [0] * callers
    start = time.perf_counter()
    deadline = start + seconds

    def call(caller: int) -> None:
        for batch in itertools.islice(itertools.cycle(batches), caller, None):
            predict(batch)
            calls[caller] += 1
            if time.perf_counter() >= deadline:
                break

    threads = [threading.Thread(target=call, args=(c,)) for c in range(1, callers)]
    for thread in threads:
        thread.start()
    call(0)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    total = sum(calls)
    return {
        "batch_size": batch_size,
        "messages_per_s": round(total * batch_size / elapsed, 1),
        "ms_per_call": round(1000 * elapsed * callers / total, 3),
        "calls": total,
        "callers": callers,
    }


def measure_predictor(
    predictor: Any,
    messages: Sequence[str],
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    seconds: float = 5.0,
) -> list[dict[str, float]]:
    """messages/s of `Predictor.predict` (Python lists in, NumPy out) per batch size."""
    return [
        measure_throughput(predictor.predict, _batches(messages, b), b, seconds)
        for b in batch_sizes
    ]


def signature_meter(
    model_dir: str | Path, messages: Sequence[str], seconds: float = 5.0, callers: int = 1
) -> Callable[[int], dict[str, float]]:
    """Loads the model once; the returned function measures the raw `serving_default`
    signature on ready-made tf.string batches of the size it is given, called by `callers`
    threads at once."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(model_dir))
    signature = loaded.signatures["serving_default"]

    def measure(batch_size: int) -> dict[str, float]:
        batches = [
            tf.constant([m.encode("utf-8", "surrogatepass") for m in batch])
            for batch in _batches(messages, batch_size)
        ]
        return measure_throughput(
            lambda x: signature(messages=x), batches, batch_size, seconds, callers
        )

    return measure


def measure_signature(
    model_dir: str | Path,
    messages: Sequence[str],
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    seconds: float = 5.0,
    callers: int = 1,
) -> list[dict[str, float]]:
    """messages/s of the raw `serving_default` signature on ready-made tf.string batches,
    called by `callers` threads at once."""
    measure = signature_meter(model_dir, messages, seconds, callers)
    return [measure(b) for b in batch_sizes]


def measure_naive(
    predictor: Any, messages: Sequence[str], seconds: float = 5.0
) -> dict[str, float]:
    """One message per `predict` call: what a service without batching would get."""
    return measure_throughput(
        lambda batch: predictor.predict(batch), _batches(messages, 1), 1, seconds
    )


def measure_keras_naive(
    network_config: dict[str, Any],
    vocabulary: Sequence[str],
    messages: Sequence[str],
    seconds: float = 5.0,
) -> dict[str, float]:
    """Keras `predict` on one message a call: what a service wrapping the Keras network
    without batching gets (the issue's calibration measured 24 msgs/s). The network has the
    artifact's configuration (`manifest.json`'s `network`) with untrained weights (the cost
    does not depend on them), fed exactly as in training."""
    from model.network import NetworkConfig, build_network
    from model.training import keras_inputs
    from model.vocab import TokenEncoder

    config = NetworkConfig.from_dict(network_config)
    network = build_network(len(vocabulary), config)
    encoder = TokenEncoder(vocabulary)

    def predict(batch: Sequence[str]) -> Any:
        inputs = keras_inputs(encoder, list(batch), config.subword_buckets)
        return network.predict(inputs, verbose=0)

    return measure_throughput(predict, _batches(messages, 1), 1, seconds)


def export_seed_configuration(directory: str | Path, vocabulary: Sequence[str]) -> Path:
    """Export the seed's network (fixed 244 steps, Embedding 300, LSTM 128 -> 64, dropout
    0.5, no masking) untrained, behind the same normalisation and vocabulary."""
    import keras
    import tensorflow as tf
    from keras import layers

    from model.serving import OUTPUT_KEY, SIGNATURE_NAME
    from model.text import tokenize_batch
    from model.vocab import PAD_INDEX, TokenEncoder

    ids = keras.Input(shape=(SEED_SEQUENCE_LENGTH,), dtype="int32")
    x = layers.Embedding(len(vocabulary), 300)(ids)
    x = layers.LSTM(128, return_sequences=True, dropout=0.5)(x)
    x = layers.LSTM(64, dropout=0.5)(x)
    network = keras.Model(ids, layers.Dense(1, activation="sigmoid")(x))

    class SeedModule(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network
            self.network_variables = list(network.variables)
            self.encoder = TokenEncoder(vocabulary)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, messages: tf.Tensor) -> dict[str, tf.Tensor]:
            tokens = tokenize_batch(messages)[:, :SEED_SEQUENCE_LENGTH]
            ragged = self.encoder.encode(tokens)
            # The seed left-pads every message to 244 steps.
            dense = ragged.to_tensor(default_value=PAD_INDEX)
            pad = SEED_SEQUENCE_LENGTH - tf.shape(dense)[1]
            dense = tf.pad(dense, [[0, 0], [pad, 0]], constant_values=PAD_INDEX)
            return {OUTPUT_KEY: tf.reshape(self.network(dense, training=False), [-1])}

    module = SeedModule()
    tf.saved_model.save(
        module, str(directory), signatures={SIGNATURE_NAME: module.serve.get_concrete_function()}
    )
    return Path(directory)


def measure_seed_configuration(
    vocabulary: Sequence[str],
    messages: Sequence[str],
    batch_sizes: Sequence[int] = (32, 256, 2048),
    seconds: float = 5.0,
) -> dict[str, Any]:
    """Export the seed configuration to a temp dir and measure it; reports its best batch."""
    with tempfile.TemporaryDirectory(prefix="seed-config-") as tmp:
        export_seed_configuration(tmp, vocabulary)
        results = measure_signature(tmp, messages, batch_sizes, seconds)
    best = max(results, key=lambda r: r["messages_per_s"])
    return {"results": results, "best": best}


def speed_markdown(report: dict[str, Any]) -> str:
    """The model card's speed section."""
    lines = [
        f"Measured for model version `{report['model_version']}` on {report['machine']} "
        f"(shared with other jobs: load average {report.get('load_average', '?')} at the "
        f"start, so figures are indicative and low), TensorFlow "
        f"{report['tensorflow_version']}, {report['seconds']} s per figure, real test-split "
        f"messages, `python -m bench.model_speed --model <dir>`.",
        "",
        "| path | batch | messages/s | ms per call |",
        "|---|---|---|---|",
    ]
    for r in report["predictor"]:
        lines.append(
            f"| `Predictor.predict` | {r['batch_size']} | {r['messages_per_s']:,.0f} | "
            f"{r['ms_per_call']} |"
        )
    for r in report["signature"]:
        lines.append(
            f"| raw `serving_default` signature | {r['batch_size']} | "
            f"{r['messages_per_s']:,.0f} | {r['ms_per_call']} |"
        )
    naive = report.get("naive_one_per_call")
    if naive:
        lines.append(
            f"| naive: `Predictor.predict` one message a call | 1 | "
            f"{naive['messages_per_s']:,.0f} | {naive['ms_per_call']} |"
        )
    seed = report.get("seed_configuration")
    if seed:
        for r in seed["results"]:
            lines.append(
                f"| seed configuration (244 steps, Embedding 300, LSTM 128→64) | "
                f"{r['batch_size']} | {r['messages_per_s']:,.0f} | {r['ms_per_call']} |"
            )
        best = max(r["messages_per_s"] for r in report["signature"])
        lines += [
            "",
            f"Best exported-model figure against the seed configuration's best: "
            f"{best / seed['best']['messages_per_s']:.1f}x.",
        ]
    lines += ["", "Text normalisation is part of every figure (it runs in the graph)."]
    return "\n".join(lines)


def run(
    model_dir: Path,
    seconds: float,
    batch_sizes: Sequence[int],
    seed: bool,
    threads: int = 0,
    signature_only: bool = False,
    callers: int = 1,
) -> dict[str, Any]:
    """All measurements for one exported model, as a JSON-ready dict. `threads` > 0 caps
    TensorFlow's pools for `callers` calls at once (as `stocksent classify
    --inference-threads --inference-workers` does); the signature's figures are then from
    `callers` threads calling it at once."""
    import tensorflow as tf

    from model.predictor import Predictor
    from model.vocab import load_vocabulary

    limit_tensorflow_threads(threads, callers)
    messages = sample_messages()
    report: dict[str, Any] = {
        "model": str(model_dir),
        "machine": machine_description(),
        "tensorflow_version": tf.__version__,
        "threads": threads or "one per core",
        "callers": callers,
        "load_average": round(os.getloadavg()[0], 2),
        "seconds": seconds,
        "signature": measure_signature(model_dir, messages, batch_sizes, seconds, callers),
    }
    if signature_only:
        return report
    predictor = Predictor.load(model_dir)
    report["model_version"] = predictor.version
    report["predictor"] = measure_predictor(predictor, messages, batch_sizes, seconds)
    report["naive_one_per_call"] = measure_naive(predictor, messages, seconds)
    if seed:
        vocabulary = load_vocabulary(Path(model_dir) / "vocabulary.txt")
        report["seed_configuration"] = measure_seed_configuration(
            vocabulary, messages, seconds=seconds
        )
    return report


def main(argv: list[str] | None = None) -> int:
    """Print one JSON object with the measurements."""
    parser = argparse.ArgumentParser(prog="python -m bench.model_speed", description=__doc__)
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="exported model directory (default: the committed model)",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per figure")
    parser.add_argument("--batch-sizes", default=",".join(map(str, DEFAULT_BATCH_SIZES)))
    parser.add_argument("--no-seed", action="store_true", help="skip the seed configuration")
    parser.add_argument(
        "--threads", type=int, default=0, help="TensorFlow threads (default: one per core)"
    )
    parser.add_argument(
        "--signature-only", action="store_true", help="only the raw serving signature figures"
    )
    parser.add_argument(
        "--callers",
        type=int,
        default=1,
        help="threads calling the signature at once (with --signature-only)",
    )
    parser.add_argument(
        "--update-card",
        action="store_true",
        help="write the figures into the model's MODEL_CARD.md",
    )
    args = parser.parse_args(argv)
    if args.callers != 1 and not args.signature_only:
        parser.error("--callers: only with --signature-only (the other figures are one caller)")
    if args.callers < 1:
        parser.error(f"--callers: {args.callers} is not a number of threads (>= 1)")
    from model.predictor import PRETRAINED_DIR

    model_dir = args.model or PRETRAINED_DIR
    report = run(
        model_dir,
        args.seconds,
        [int(b) for b in args.batch_sizes.split(",")],
        not args.no_seed and not args.signature_only,
        args.threads,
        args.signature_only,
        args.callers,
    )
    if args.update_card and not args.signature_only:
        from model.card import CARD_NAME, replace_speed_section

        card = model_dir / CARD_NAME
        card.write_text(
            replace_speed_section(card.read_text(encoding="utf-8"), speed_markdown(report)),
            encoding="utf-8",
        )
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
