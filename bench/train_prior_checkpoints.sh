#!/usr/bin/env bash
# How the shipped classifier and code priors were trained (all at once, on one GPU or on a CPU):
# OUT=runs COURSE_MNIST_DIR=/path/to/mnist bash bench/train_prior_checkpoints.sh
set -u
OUT=${OUT:-runs}; EPOCHS=${EPOCHS:-40}
export PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null || true
python3 -c "from starter.dataset_files import prepare_mnist; prepare_mnist()" || exit 1
python3 -m starter.cli train-classifier --out "$OUT/classifier" --epochs 8 > "$OUT/classifier.log" 2>&1 &
python3 -m starter.cli train-prior --vqvae data/checkpoints/vqvae.pt --out "$OUT/prior" --epochs "$EPOCHS" > "$OUT/prior.log" 2>&1 &
python3 -m starter.cli train-prior --vqvae data/checkpoints/vqvae.pt --conditional --out "$OUT/conditional" \
    --epochs "$EPOCHS" > "$OUT/conditional.log" 2>&1 &
# The two gated priors (no blind spot) were trained later on the 2 CPU cores, one after the other, 20 epochs each;
# the unconditional one then 10 epochs more, from its own weights (prior_gated.pt; its log holds all 30 epochs).
(
    python3 -m starter.cli train-prior --vqvae data/checkpoints/vqvae.pt --model gated_prior --blocks 7 --out "$OUT/gated" \
        --epochs 20 &&
    python3 -m starter.cli train-prior --vqvae data/checkpoints/vqvae.pt --model gated_prior --blocks 7 \
        --init "$OUT/gated/checkpoint.pt" --lr 3e-4 --lr-decay 0.8 --out "$OUT/gated_longer" --epochs 10
) > "$OUT/gated.log" 2>&1 &
python3 -m starter.cli train-prior --vqvae data/checkpoints/vqvae.pt --model gated_prior --blocks 7 --conditional \
    --out "$OUT/gated_conditional" --epochs 20 > "$OUT/gated_conditional.log" 2>&1 &
# The gated prior conditioned on 200 k-means clusters of the training images (deskewed, and averaged with their
# nearest neighbours: starter.clusters.cluster_points) instead of labels, with dropout and the average of its weights
# (trained later, alone on the 2 CPU cores; float16 on disk to stay under 4 MB): sampled with the cluster drawn by
# its share, an unconditional prior.
python3 -m starter.cli train-prior --vqvae data/checkpoints/vqvae.pt --model gated_prior --blocks 7 --clusters 200 \
    --cluster-on neighbours --dropout 0.1 --ema 0.999 --half --out "$OUT/gated_clusters" --epochs 24 \
    > "$OUT/gated_clusters.log" 2>&1 &
wait
tail -n 2 "$OUT"/*.log
