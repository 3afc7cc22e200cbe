"""Column names and types of an ingestion row, and the keys of a shard sample, declared once.

A row is one source until the decode step splits it into clips; every row carries every column
(null where it does not apply), so steps, the Ray adapter and the writer share one Arrow schema.
Rows never vanish inside the pipeline: a rejected row keeps flowing with `status` set, which is
how every source and clip is accounted for at the end.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa

# Row status values.
OK, FAILED, FILTERED, DROPPED = "ok", "failed", "filtered", "dropped"
STATUSES = (OK, FAILED, FILTERED, DROPPED)

SOURCE_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("source_uri", pa.string()),  # where the video was found
    ("source_index", pa.int64()),  # position in the sorted discovery list: fixes the output order
    ("source_hash", pa.string()),  # content hash of the file: the source's identity
    ("source_bytes", pa.int64()),
    ("source_caption", pa.string()),  # caption given with the source (sidecar .txt or manifest column)
    ("source_title", pa.string()),
    ("source_meta", pa.string()),  # JSON text of any other given metadata
    ("duration_s", pa.float64()),
    ("src_fps", pa.float64()),
    ("src_frames", pa.int64()),
    ("src_width", pa.int64()),  # display width (after rotation)
    ("src_height", pa.int64()),
    ("codec", pa.string()),
    ("rotation", pa.int64()),  # degrees the player rotates the stored frames
    ("has_audio", pa.bool_()),
    ("clips_in_source", pa.int64()),  # clips the decode step made from this source
]
CLIP_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("clip_id", pa.string()),  # <source hash prefix>_<start ms>_<end ms>: the same on every re-run
    ("clip_index", pa.int64()),
    ("start_s", pa.float64()),
    ("end_s", pa.float64()),
    ("fps", pa.float64()),
    ("frames", pa.int64()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("bucket", pa.string()),
    ("mp4", pa.binary()),  # the re-encoded H.264 clip
    ("mp4_bytes", pa.int64()),
    ("encode_s", pa.float64()),  # seconds the decode step spent encoding this clip
    ("samples", pa.binary()),  # .npy of (2K, h, w, 3) uint8: K frame pairs for scorers and captioners
    ("motion", pa.float64()),  # mean optical-flow speed, frame widths per second
    ("motion_dx", pa.float64()),  # mean flow of moving pixels, frame widths per second (right > 0)
    ("motion_dy", pa.float64()),  # (down > 0)
    ("sharpness", pa.float64()),  # variance of the Laplacian of grey frames
    ("brisque", pa.float64()),  # BRISQUE no-reference quality, lower is better
    ("nsfw", pa.float64()),  # highest NudeNet score of an exposed class over sampled frames
    ("nsfw_scores", pa.string()),  # JSON {class: highest score over sampled frames}
    ("phash", pa.string()),  # 256-bit difference hash of the middle frame, hex
    ("brightness", pa.float64()),  # mean luma, 0..1
    ("colors", pa.string()),  # JSON [[colour name, share of colourful pixels], ...]
    ("caption", pa.string()),  # the new caption (shard `txt`)
    ("captioner", pa.string()),
    ("text_tokens", pa.binary()),  # .npy float16 (n_real_tokens, D) of the caption
    ("duplicate_of", pa.string()),  # clip id or source uri this row duplicates
]
STATUS_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("status", pa.string()),  # ok | failed | filtered (a source) | dropped (a clip)
    ("stage", pa.string()),  # step that rejected the row
    ("reason", pa.string()),  # short machine-readable reason, e.g. too_short, motion_below_min
    ("detail", pa.string()),  # the same for a person: values, limits, error text
]
STAGE_SECONDS_PREFIX = "sec_"  # sec_<step>: that step's seconds attributed to this row

# Scores kept for dropped clips too, so new thresholds can be judged without decoding again.
SCORE_COLUMNS = ("motion", "motion_dx", "motion_dy", "sharpness", "brisque", "nsfw", "nsfw_scores", "phash",
                 "brightness", "colors")
# Columns that never leave the pipeline in a table (bulky bytes live in the shards only).
BULK_COLUMNS = ("mp4", "samples", "text_tokens")
# Columns only steps read (scorers and captioners): the Ray runner empties them after the last step, so a
# clip's frame pairs (about 0.9 MB at 256x144) never travel to the driver.
STEP_ONLY_COLUMNS = ("samples",)

# Shard sample keys: what plain webdataset sees.
SAMPLE_KEY = "__key__"
SAMPLE_VIDEO = "mp4"
SAMPLE_CAPTION = "txt"
SAMPLE_META = "json"
SAMPLE_TEXT_TOKENS = "npy"  # float16 (n_real_tokens, D), no padding; the pooled vector is their mean
SAMPLE_LATENT = "latent.npy"  # reserved for precomputed VAE latents


def row_schema(stage_names: list[str]) -> pa.Schema:
    """The Arrow schema of rows flowing through a pipeline of the named steps."""
    cols = SOURCE_COLUMNS + CLIP_COLUMNS + STATUS_COLUMNS
    cols += [(STAGE_SECONDS_PREFIX + name, pa.float64()) for name in stage_names]
    return pa.schema(cols)


def to_table(columns: dict[str, list], schema: pa.Schema) -> pa.Table:
    """Columns (lists, possibly a subset) -> a table of the full schema, nulls where absent."""
    n = len(next(iter(columns.values()))) if columns else 0
    unknown = set(columns) - set(schema.names)
    assert not unknown, f"columns not in the row schema: {sorted(unknown)}"
    arrays = [pa.array(columns.get(f.name, [None] * n), type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)
