#!/usr/bin/env bash
# How notebook 05's shipped checkpoints were trained (on the 2-core CPU; two chains side by side):
#   MNIST two-level VQ-VAE -> its class-conditional top prior -> its bottom prior;
#   Fashion-MNIST VQ-VAE -> its class-conditional prior.
# OUT=runs COURSE_MNIST_DIR=/path/to/mnist bash bench/train_notebook05_checkpoints.sh
set -u
OUT=${OUT:-runs}; PY=${PY:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
$PY -c "from starter.dataset_files import prepare_mnist; prepare_mnist(); prepare_mnist(dataset='fashion')" || exit 1
(
    $PY -m starter.cli train-two-level --out "$OUT/two_level" --epochs 15 &&
    $PY -m starter.cli train-prior --vqvae "$OUT/two_level/checkpoint.pt" --level top --conditional \
        --out "$OUT/top_prior" --epochs 15 &&
    $PY -m starter.cli train-prior --vqvae "$OUT/two_level/checkpoint.pt" --level bottom --out "$OUT/bottom_prior" --epochs 12
) > "$OUT/two_level.log" 2>&1 &
(
    $PY -m starter.cli train-vqvae --dataset fashion --update ema --restart --out "$OUT/fashion_vqvae" --epochs 10 &&
    $PY -m starter.cli train-prior --dataset fashion --vqvae "$OUT/fashion_vqvae/checkpoint.pt" --conditional \
        --out "$OUT/fashion_prior" --epochs 12
) > "$OUT/fashion.log" 2>&1 &
wait
tail -n 2 "$OUT/two_level.log" "$OUT/fashion.log"
