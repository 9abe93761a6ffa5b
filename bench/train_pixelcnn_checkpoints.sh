#!/usr/bin/env bash
# How the shipped PixelCNN checkpoints were trained: the gated and the plain model side by side on one GPU,
# each for T seconds of wall time (default 390), bf16 autocast, Adam 1e-3 decayed by 0.97 per epoch.
# Usage: OUT=runs T=390 COURSE_MNIST_DIR=/path/to/mnist bash bench/train_pixelcnn_checkpoints.sh
set -u
OUT=${OUT:-runs}; T=${T:-390}; EXTRA=${EXTRA:-}
export PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null || true
python3 -c "import torch; print('torch', torch.__version__)"
python3 -c "from starter.dataset_files import prepare_mnist; prepare_mnist()" || exit 1
python3 -m starter.cli train-pixelcnn --model gated_pixelcnn --channels 64 --blocks 7 --out "$OUT/gated" \
    --time-limit "$T" --epochs 500 --lr-decay 0.97 $EXTRA > "$OUT/gated.log" 2>&1 &
python3 -m starter.cli train-pixelcnn --model pixelcnn --channels 64 --blocks 5 --out "$OUT/plain" \
    --time-limit "$T" --epochs 500 --lr-decay 0.97 $EXTRA > "$OUT/plain.log" 2>&1 &
wait
tail -n 3 "$OUT/gated.log" "$OUT/plain.log"
