"""Real model versions for hot-reload tests, made in seconds without training: the committed
SavedModel re-saved with its output bias shifted (a different model, with its own content
hash, manifest and smoke-check record), and broken copies of a version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from model.predictor import MANIFEST_NAME, PRETRAINED_DIR

# Manifest fields `write_manifest` fills itself (or that describe another model's files).
GENERATED_FIELDS = (
    "format",
    "model_version",
    "content_sha256",
    "hashed_files",
    "created_at",
    "tensorflow_version",
    "keras_version",
    "signature",
    "sequence_policy",
    "smoke_check",
)


def shifted_version(out: Path, bias_shift: float, source: Path = PRETRAINED_DIR) -> str:
    """Writes to `out` the exported model at `source` with `bias_shift` added to its output
    logit (every probability moves towards bullish for a positive shift), as a complete
    exported model: SavedModel with the serving signature, vocabulary, and a manifest whose
    version is its content hash and whose smoke check records its own probabilities.
    Returns the new version."""
    import tensorflow as tf

    from model.export import VOCABULARY_NAME, write_manifest
    from model.predictor import Predictor
    from model.serving import SIGNATURE_NAME
    from model.smoke import MANIFEST_FIELD, record

    loaded = tf.saved_model.load(str(source))
    loaded.network.head_bias.assign_add([bias_shift])
    if out.exists():
        shutil.rmtree(out)
    tf.saved_model.save(
        loaded, str(out), signatures={SIGNATURE_NAME: loaded.signatures[SIGNATURE_NAME]}
    )
    shutil.copy(source / VOCABULARY_NAME, out / VOCABULARY_NAME)
    original: dict[str, Any] = json.loads((source / MANIFEST_NAME).read_text(encoding="utf-8"))
    fields = {k: v for k, v in original.items() if k not in GENERATED_FIELDS}
    fields["derived_from"] = {
        "version": original["model_version"],
        "change": f"output bias {bias_shift:+g} (a test model)",
    }
    smoke = record(Predictor.open_savedmodel(out, {"model_version": "unsaved"}))
    manifest = write_manifest(out, {**fields, MANIFEST_FIELD: smoke})
    return str(manifest["model_version"])


def renamed_copy(source: Path, out: Path, version: str, **changes: Any) -> Path:
    """A copy of an exported model whose manifest names `version` (and has `changes`)."""
    shutil.copytree(source, out)
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    manifest.update(model_version=version, **changes)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out


def with_wrong_smoke_record(source: Path, out: Path, version: str) -> Path:
    """A copy whose manifest records sample probabilities the model does not give."""
    recorded = json.loads((source / MANIFEST_NAME).read_text(encoding="utf-8"))["smoke_check"]
    wrong = [round(min(1.0, p + 0.2) if p < 0.5 else p - 0.2, 6) for p in recorded["probabilities"]]
    return renamed_copy(source, out, version, smoke_check={**recorded, "probabilities": wrong})


def with_damaged_variables(source: Path, out: Path, version: str) -> Path:
    """A copy whose variables file is cut in half (a torn copy)."""
    renamed_copy(source, out, version)
    data = next((out / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    return out
