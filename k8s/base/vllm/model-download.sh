#!/bin/sh
# Fills /models/$MODEL_NAME once, from Hugging Face, S3 or GCS ($MODEL_SOURCE: hf | s3 | gcs).
#
# Idempotent: a model that is complete (it has the marker file) is left alone, so the Job
# can run again on every `kubectl apply -k` at no cost. Files land in $MODEL_NAME.partial
# first and are moved into place only once they are all there, so vLLM never sees half a
# model; an interrupted run resumes from what .partial already holds.
set -eu

# MODELS_DIR: where the volume is mounted (the Job mounts it at /models).
dest="${MODELS_DIR:-/models}/${MODEL_NAME:?MODEL_NAME is not set}"
marker="$dest/.gatehouse-complete"
partial="$dest.partial"

if [ -f "$marker" ]; then
  echo "model-download: $dest is complete ($(cat "$marker")), nothing to do"
  exit 0
fi

mkdir -p "$partial"
echo "model-download: fetching $MODEL_NAME from ${MODEL_SOURCE:?MODEL_SOURCE is not set} into $partial"
case "$MODEL_SOURCE" in
  hf)
    # huggingface_hub ships in the vllm/vllm-openai image; HF_TOKEN (from the Secret) opens
    # gated repositories.
    python3 - "$partial" <<'PY'
import os, sys
from huggingface_hub import snapshot_download
ignore = [p for p in os.environ.get("HF_IGNORE_PATTERNS", "").split(",") if p]
snapshot_download(
    repo_id=os.environ["HF_MODEL_ID"],
    revision=os.environ.get("HF_REVISION") or None,
    local_dir=sys.argv[1],
    ignore_patterns=ignore or None,
)
PY
    rm -rf "$partial/.cache"
    ;;
  s3)
    aws s3 sync --only-show-errors --no-progress "${S3_URI:?S3_URI is not set}" "$partial"
    ;;
  gcs)
    gcloud storage rsync --recursive "${GCS_URI:?GCS_URI is not set}" "$partial"
    ;;
  *)
    echo "model-download: MODEL_SOURCE must be hf, s3 or gcs, not \"$MODEL_SOURCE\"" >&2
    exit 2
    ;;
esac

# vLLM cannot start without it: catches an empty bucket prefix or a mistyped repository.
if [ ! -f "$partial/config.json" ]; then
  echo "model-download: no config.json in what was fetched; is the source right?" >&2
  exit 1
fi

rm -rf "$dest"
mv "$partial" "$dest"
date -u +%Y-%m-%dT%H:%M:%SZ > "$marker"
echo "model-download: $dest is complete"
