"""How closely k-means clusters found without labels follow the digits: `python bench/cluster_purity.py
[--k 100 200 500]`.

For each choice of points that `train-prior --clusters K --cluster-on` groups (`starter.clusters.cluster_points`:
pixels, deskewed pixels, or deskewed points averaged with their nearest neighbours'), k-means as train-prior runs it
(seed 0) on the 60,000 training images; then, using the labels k-means never saw: the purity (the share of
training images whose label is their cluster's most common one) and the share of the 10,000 test images, each put
in its nearest cluster, whose label is that cluster's most common training label.
"""

from __future__ import annotations

import argparse
import time

from starter.clusters import CLUSTER_ON, find_clusters, purity
from starter.data import load_mnist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[100, 200, 500], help="numbers of clusters")
    args = parser.parse_args()
    (train, train_labels), (test, test_labels) = (load_mnist(train=split).tensors for split in (True, False))
    print(f"{'points':<12} {'clusters':>8} {'train purity':>13} {'test purity':>12} {'seconds':>8}")
    for on in CLUSTER_ON:
        for k in args.k:
            start = time.perf_counter()
            members, test_members = find_clusters(train, test, k, on=on)
            train_purity, majority = purity(members, train_labels, k)
            test_purity = float((majority[test_members] == test_labels).float().mean())
            seconds = time.perf_counter() - start
            print(f"{on:<12} {k:>8} {train_purity:>13.2%} {test_purity:>12.2%} {seconds:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
