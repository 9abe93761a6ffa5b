#!/usr/bin/env bash
# maskgit.pt trained further on one GPU, in one device call of under 10 minutes: issue 27's 8-step target (FID-MNIST
# within 25 % of the transformer prior's) needs more training than 2 CPU cores give (there, its last 60 epochs, 2 hours,
# moved the 8-step FID-MNIST from 152.8 to 139.4). Three continuations of the shipped model share the GPU, side by side:
#   longer    the CPU recipe as it is: 6 layers, batches of 128, lr 2e-4, weight average 0.999, no dropout
#   batch512  the same in batches of 512 at lr 5e-4: fewer, larger steps, what a GPU does best
#   deeper    grown to 8 layers (the 6 trained blocks, then 2 that start as the identity), batches of 256, lr 3e-4
# Each first trains 1 epoch (the three at once, so that the epoch is timed as they share the GPU), then goes on from
# those weights for as many epochs as fit in BUDGET seconds from the start. Then bench/prior_quality.py scores the
# shipped model and the three on the GPU (n images, 3 seeds, 8 steps and raster order, and each model's raster-order
# NLL on the first 1000 test grids) against the transformer prior at T = 1.
# Here, once: mkdir -p data/mnist_gz && cp /path/to/MNIST/raw/*.gz data/mnist_gz/ (11 MB; data/ is git-ignored);
# then the device call: run(command="COURSE_MNIST_DIR=data/mnist_gz bash bench/train_maskgit_gpu.sh",
# carry=["data/mnist_gz"], timeout_s=600)
# Its $OUT (what comes back: 8 files): each run's checkpoint.pt and log.csv, train.log (every run's output) and
# bench.log (the table). A check of the script on 2 CPU cores (about 10 minutes, most of it the raster-order NLLs):
#   DEVICE=cpu BUDGET=150 LIMIT=1000 N=100 SEEDS=1 OUT=/tmp/maskgit_gpu PY=.venv/bin/python \
#   bash bench/train_maskgit_gpu.sh
set -u
OUT=${OUT:-runs/maskgit_gpu}; PY=${PY:-python3}; DEVICE=${DEVICE:-cuda}
BUDGET=${BUDGET:-420}; N=${N:-5000}; SEEDS=${SEEDS:-3}; LIMIT=${LIMIT:-}  # LIMIT: the first N training images only
VQVAE=data/checkpoints/vqvae.pt; MASKGIT=data/checkpoints/maskgit.pt
RUNS="longer:6:128:2e-4 batch512:6:512:5e-4 deeper:8:256:3e-4"  # name:layers:batch:lr
PROBES=$(mktemp -d)
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
start=$SECONDS
$PY -c "from starter.dataset_files import prepare_mnist; prepare_mnist()" || exit 1

train() {  # name layers batch lr init epochs out [options]: one run of train-prior, its output added to train.log
    $PY -m starter.cli train-prior --vqvae "$VQVAE" --model maskgit_prior --layers "$2" --batch-size "$3" --lr "$4" \
        --init "$5" --epochs "$6" --ema 0.999 --dropout 0.0 --device "$DEVICE" ${LIMIT:+--limit "$LIMIT"} \
        --out "$7" ${8:-} > "$PROBES/$1-$6.log" 2>&1
    status=$?
    { echo "== $1: $6 epochs from $5, exit $status"; cat "$PROBES/$1-$6.log"; } >> "$OUT/train.log"
    return $status
}

for run in $RUNS; do  # one epoch each, side by side: an epoch's time as the three share the device
    IFS=: read -r name layers batch lr <<< "$run"
    train "$name" "$layers" "$batch" "$lr" "$MASKGIT" 1 "$PROBES/$name" &
done
wait
for run in $RUNS; do  # then as many epochs as fit, from the timed epoch's weights
    IFS=: read -r name layers batch lr <<< "$run"
    [ -f "$PROBES/$name/checkpoint.pt" ] || { echo "$name: its timed epoch failed (train.log)"; continue; }
    epoch=$($PY -c "import csv; print(float(list(csv.DictReader(open('$PROBES/$name/log.csv')))[-1]['seconds']))")
    left=$((BUDGET - (SECONDS - start) - 30))  # 30 s to start
    read -r epochs limit <<< "$($PY -c "print(max(1, int($left / (1.1 * $epoch))), max(1, $left - 1.1 * $epoch))")"
    echo "$name: $epoch s an epoch beside the others, $epochs epochs more"
    train "$name" "$layers" "$batch" "$lr" "$PROBES/$name/checkpoint.pt" "$epochs" "$OUT/$name" \
        "--half --time-limit $limit" &  # the cosine schedule ends on time; should epochs slow down, it stops in time
done
wait
echo "trained in $((SECONDS - start)) s"
trained=$(for run in $RUNS; do f="$OUT/${run%%:*}/checkpoint.pt"; [ -f "$f" ] && echo "$f"; done)
$PY bench/prior_quality.py --device "$DEVICE" --n "$N" --seeds "$SEEDS" --priors maskgit.pt $trained \
    prior_transformer.pt --levers "T = 1.0" "8 steps" "49 steps in raster order" 2>&1 | tee "$OUT/bench.log"
rm -rf "$PROBES"
echo "done in $((SECONDS - start)) s"
