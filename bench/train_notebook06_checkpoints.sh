#!/usr/bin/env bash
# How notebook 06's checkpoints were trained on the 2 CPU cores:
#   prior_transformer.pt              train-prior --model transformer_prior, 15 epochs (one thread, beside other jobs),
#                                     then 6 epochs more from those weights at lr 3e-4 with an exponential moving
#                                     average of the weights (--init, --ema 0.999; alone, both cores), which it
#                                     holds ($OUT/transformer_ema/checkpoint.pt; its log: both runs, epochs 16-21
#                                     the second)
#   prior_transformer_conditional.pt  the same with --conditional --class_dropout 0.1, 6 epochs (alone, both cores:
#                                     one grid in ten is shown "no class", for classifier-free guidance)
#   maskgit.pt                        train-prior --model maskgit_prior, 6 epochs at lr 5e-4 (alone, both cores),
#                                     starting from the 15-epoch transformer's weights (--init), then 8 epochs more
#                                     from its own weights at lr 3e-4 with --ema 0.999, then 12 more at lr 2e-4
#                                     with --ema 0.999, 8 more the same, then 14 more the same without dropout
#                                     (--dropout 0.0), then 14 more the same again, then 28 more the same, then
#                                     20 more the same, then 40 more the same, then 20 more the same with two
#                                     layers more (--layers 6: the 4 trained blocks, then 2 that start as the
#                                     identity; --half: float16 weights, 2.5 MB), which it holds
#                                     ($OUT/maskgit_ema9/checkpoint.pt; its log: the ten runs, epochs 7-14 the
#                                     second, 15-26 the third, 27-34 the fourth, 35-48 the fifth, 49-62 the sixth,
#                                     63-90 the seventh, 91-110 the eighth, 111-150 the ninth, 151-170 the tenth)
# (the 15-epoch transformer was trained by this recipe, in the same code, just before the command took its final
# form; the others were trained later, one after the other, from it.)
# OUT=runs COURSE_MNIST_DIR=/path/to/mnist bash bench/train_notebook06_checkpoints.sh
set -u
OUT=${OUT:-runs}; PY=${PY:-python3}; VQVAE=data/checkpoints/vqvae.pt
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
$PY -c "from starter.dataset_files import prepare_mnist; prepare_mnist()" || exit 1
OMP_NUM_THREADS=1 $PY -m starter.cli train-prior --vqvae "$VQVAE" --model transformer_prior --epochs 15 \
    --out "$OUT/transformer" > "$OUT/transformer.log" 2>&1 || exit 1
$PY -m starter.cli train-prior --vqvae "$VQVAE" --model transformer_prior --init "$OUT/transformer/checkpoint.pt" \
    --lr 3e-4 --ema 0.999 --epochs 6 --out "$OUT/transformer_ema" > "$OUT/transformer_ema.log" 2>&1 || exit 1
$PY -m starter.cli train-prior --vqvae "$VQVAE" --model transformer_prior --conditional --class_dropout 0.1 \
    --epochs 6 --out "$OUT/transformer_conditional" > "$OUT/transformer_conditional.log" 2>&1
$PY -m starter.cli train-prior --vqvae "$VQVAE" --model maskgit_prior --init "$OUT/transformer/checkpoint.pt" \
    --lr 5e-4 --epochs 6 --out "$OUT/maskgit" > "$OUT/maskgit.log" 2>&1 || exit 1
$PY -m starter.cli train-prior --vqvae "$VQVAE" --model maskgit_prior --init "$OUT/maskgit/checkpoint.pt" \
    --lr 3e-4 --ema 0.999 --epochs 8 --out "$OUT/maskgit_ema" > "$OUT/maskgit_ema.log" 2>&1 || exit 1
$PY -m starter.cli train-prior --vqvae "$VQVAE" --model maskgit_prior --init "$OUT/maskgit_ema/checkpoint.pt" \
    --lr 2e-4 --ema 0.999 --epochs 12 --out "$OUT/maskgit_ema2" > "$OUT/maskgit_ema2.log" 2>&1 || exit 1
$PY -m starter.cli train-prior --vqvae "$VQVAE" --model maskgit_prior --init "$OUT/maskgit_ema2/checkpoint.pt" \
    --lr 2e-4 --ema 0.999 --epochs 8 --out "$OUT/maskgit_ema3" > "$OUT/maskgit_ema3.log" 2>&1 || exit 1
previous=maskgit_ema3
for run in 4:14:4 5:14:4 6:28:4 7:20:4 8:40:4 9:20:6:--half; do  # the dropout-free runs, each from the one before
    IFS=: read -r number epochs layers half <<< "$run"  # the last grows 4 layers to 6 and stores float16 weights
    $PY -m starter.cli train-prior --vqvae "$VQVAE" --model maskgit_prior --layers "$layers" $half \
        --init "$OUT/$previous/checkpoint.pt" --lr 2e-4 --ema 0.999 --dropout 0.0 --epochs "$epochs" \
        --out "$OUT/maskgit_ema$number" > "$OUT/maskgit_ema$number.log" 2>&1 || exit 1
    previous=maskgit_ema$number
done
tail -n 2 "$OUT"/transformer*.log "$OUT"/maskgit*.log
