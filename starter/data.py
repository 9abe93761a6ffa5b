"""MNIST through torchvision, with an offline path, as in-memory tensors and fast loaders."""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from starter.config import DATA_ROOT

MNIST_ENV = "COURSE_MNIST_DIR"
# md5 of the four *unpacked* official files (the same values as ../shared/data/MNIST/raw/MD5SUMS.raw).
MNIST_RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
Form = Literal["float", "binary", "int"]


class DatasetNotFoundError(RuntimeError):
    """MNIST is neither on disk nor downloadable."""


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _raw_dir(root: Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def _missing_or_bad(raw: Path) -> list[str]:
    return [name for name, md5 in MNIST_RAW_MD5.items() if not (raw / name).exists() or _md5(raw / name) != md5]


def _copy_from_local(source: Path, raw: Path) -> None:
    """Unpack (or copy) the four files from a local folder into `raw`, never using the network."""
    raw.mkdir(parents=True, exist_ok=True)
    for name, md5 in MNIST_RAW_MD5.items():
        plain, packed = source / name, source / f"{name}.gz"
        partial = raw / f"{name}.{os.getpid()}.part"  # written aside, then renamed: safe with parallel runs
        if packed.exists():
            with gzip.open(packed, "rb") as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
        elif plain.exists():
            shutil.copyfile(plain, partial)
        else:
            raise DatasetNotFoundError(f"{MNIST_ENV}={source} has neither {name} nor {name}.gz.")
        if _md5(partial) != md5:
            partial.unlink()
            raise DatasetNotFoundError(f"{source / name}(.gz) is not the official MNIST file (md5 mismatch).")
        partial.replace(raw / name)


def prepare_mnist(root: Path | str = DATA_ROOT) -> Path:
    """Make sure `root/MNIST/raw` holds the four verified MNIST files and return `root`.

    Order: files already there; else the folder named by COURSE_MNIST_DIR (offline, .gz or unpacked);
    else torchvision's download.
    """
    root = Path(root)
    raw = _raw_dir(root)
    if not _missing_or_bad(raw):
        return root
    local = os.environ.get(MNIST_ENV)
    if local:
        _copy_from_local(Path(local).expanduser(), raw)
        return root
    from torchvision.datasets import MNIST

    try:
        for train in (True, False):
            MNIST(root=str(root), train=train, download=True)
    except Exception as error:  # no network, blocked mirror, ...
        raise DatasetNotFoundError(
            f"MNIST could not be downloaded ({type(error).__name__}: {error}).\n"
            f"Offline? Put the four MNIST files (e.g. train-images-idx3-ubyte.gz) in a folder and set\n"
            f"  {MNIST_ENV}=/path/to/that/folder\n"
            f"or unpack them yourself into {raw}/ ."
        ) from None
    bad = _missing_or_bad(raw)
    if bad:
        raise DatasetNotFoundError(f"These files in {raw} are missing or corrupt: {', '.join(bad)}. Delete them and retry.")
    return root


def mnist(train: bool = True, root: Path | str = DATA_ROOT):
    """The torchvision MNIST dataset (PIL images), prepared offline when COURSE_MNIST_DIR is set."""
    from torchvision.datasets import MNIST

    return MNIST(root=str(prepare_mnist(root)), train=train, download=False)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float32 in [0, 1] with a channel axis (N, 1, 28, 28)."""
    return images.unsqueeze(1).float().div_(255.0)


def binarize(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """uint8 images -> float32 {0, 1} with a channel axis (a pixel is on when brighter than `threshold`)."""
    return (to_float(images) > threshold).float()


def to_int(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> int64 intensities 0..255 with a channel axis: targets for a 256-way softmax."""
    return images.unsqueeze(1).long()


TRANSFORMS = {"float": to_float, "binary": binarize, "int": to_int}


def load_mnist(
    train: bool = True,
    form: Form = "float",
    limit: int | None = None,
    device: torch.device | str = "cpu",
    root: Path | str = DATA_ROOT,
) -> TensorDataset:
    """MNIST as an in-memory TensorDataset of (images, labels); `limit` keeps the first examples."""
    if form not in TRANSFORMS:
        raise ValueError(f"form must be one of {sorted(TRANSFORMS)}, got {form!r}")
    dataset = mnist(train, root)
    images, labels = dataset.data[:limit], dataset.targets[:limit]
    return TensorDataset(TRANSFORMS[form](images).to(device), labels.to(device))


def make_loader(dataset: TensorDataset, batch_size: int = 128, shuffle: bool = False, seed: int = 0,
                num_workers: int = 0) -> DataLoader:
    """A DataLoader that slices whole batches out of in-memory tensors (no per-image Python work)."""
    if shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None,
                      num_workers=num_workers)
