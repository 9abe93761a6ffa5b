#!/usr/bin/env bash
# How notebook 06's checkpoints were trained, side by side on the 2 CPU cores, one thread each:
#   prior_transformer.pt              train-prior --model transformer_prior, 15 epochs
#   prior_transformer_conditional.pt  the same with --conditional, 6 epochs
#   maskgit.pt                        train-prior --model maskgit_prior, 8 epochs
# (prior_transformer.pt was trained by this recipe, in the same code, just before the command took its final form.)
# OUT=runs COURSE_MNIST_DIR=/path/to/mnist bash bench/train_notebook06_checkpoints.sh
set -u
OUT=${OUT:-runs}; PY=${PY:-python3}; VQVAE=data/checkpoints/vqvae.pt
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT"
$PY -c "from starter.dataset_files import prepare_mnist; prepare_mnist()" || exit 1
$PY -m starter.cli train-prior --vqvae "$VQVAE" --model transformer_prior --epochs 15 \
    --out "$OUT/transformer" > "$OUT/transformer.log" 2>&1 &
$PY -m starter.cli train-prior --vqvae "$VQVAE" --model transformer_prior --conditional --epochs 6 \
    --out "$OUT/transformer_conditional" > "$OUT/transformer_conditional.log" 2>&1 &
$PY -m starter.cli train-prior --vqvae "$VQVAE" --model maskgit_prior --epochs 8 \
    --out "$OUT/maskgit" > "$OUT/maskgit.log" 2>&1 &
wait
tail -n 2 "$OUT"/transformer*.log "$OUT/maskgit.log"
