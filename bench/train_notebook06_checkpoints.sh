#!/usr/bin/env bash
# How notebook 06's checkpoints were trained on the 2 CPU cores:
#   prior_transformer.pt              train-prior --model transformer_prior, 15 epochs (one thread, beside other jobs)
#   prior_transformer_conditional.pt  the same with --conditional --class_dropout 0.1, 6 epochs (alone, both cores:
#                                     one grid in ten is shown "no class", for classifier-free guidance)
#   maskgit.pt                        train-prior --model maskgit_prior, 6 epochs at lr 5e-4 (alone, both cores),
#                                     starting from prior_transformer.pt's weights (--init)
# (prior_transformer.pt was trained by this recipe, in the same code, just before the command took its final form;
# the other two were retrained later, one after the other, from the shipped prior_transformer.pt.)
# OUT=runs COURSE_MNIST_DIR=/path/to/mnist bash bench/train_notebook06_checkpoints.sh
set -u
OUT=${OUT:-runs}; PY=${PY:-python3}; VQVAE=data/checkpoints/vqvae.pt
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
$PY -c "from starter.dataset_files import prepare_mnist; prepare_mnist()" || exit 1
OMP_NUM_THREADS=1 $PY -m starter.cli train-prior --vqvae "$VQVAE" --model transformer_prior --epochs 15 \
    --out "$OUT/transformer" > "$OUT/transformer.log" 2>&1 || exit 1
$PY -m starter.cli train-prior --vqvae "$VQVAE" --model transformer_prior --conditional --class_dropout 0.1 \
    --epochs 6 --out "$OUT/transformer_conditional" > "$OUT/transformer_conditional.log" 2>&1
$PY -m starter.cli train-prior --vqvae "$VQVAE" --model maskgit_prior --init "$OUT/transformer/checkpoint.pt" \
    --lr 5e-4 --epochs 6 --out "$OUT/maskgit" > "$OUT/maskgit.log" 2>&1
tail -n 2 "$OUT"/transformer*.log "$OUT/maskgit.log"
