"""Getting the MNIST and Fashion-MNIST files onto disk: torchvision's download, or offline from a local folder, each
file checked against its md5. torch is imported only to read them (`read_idx`): the grader unpacks them without it."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import math
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from starter.config import DATA_ROOT, FASHION_ENV, MNIST_ENV

if TYPE_CHECKING:
    import torch

Dataset = Literal["mnist", "fashion"]
VERIFIED = "verified.json"  # beside raw/: the size and modification time of each file when it last matched its md5


@dataclass(frozen=True)
class DatasetSpec:
    """Where a 28x28 dataset lives: torchvision class, local folder variable, md5 of the four *unpacked* files."""

    title: str
    torchvision_class: str
    env: str
    md5: dict[str, str]
    known_folders: tuple[str, ...] = ()  # searched when the variable is unset, e.g. a Debian package's folder
    classes: tuple[str, ...] = tuple(str(digit) for digit in range(10))


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "MNIST",
        "MNIST",
        MNIST_ENV,
        {  # the same values as ../shared/data/MNIST/raw/MD5SUMS.raw
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
    ),
    "fashion": DatasetSpec(
        "Fashion-MNIST",
        "FashionMNIST",
        FASHION_ENV,
        {  # Zalando's files, as Debian ships them
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        known_folders=("/usr/share/datasets/fashion-mnist",),  # apt install dataset-fashion-mnist
        classes=("T-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"),
    ),
}


class DatasetNotFoundError(RuntimeError):
    """The dataset is neither on disk nor downloadable."""


def _spec(dataset: str) -> DatasetSpec:
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    return DATASETS[dataset]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _raw_dir(root: Path, spec: DatasetSpec) -> Path:
    return Path(root) / spec.torchvision_class / "raw"


def _missing_or_bad(raw: Path, spec: DatasetSpec) -> list[str]:
    """The files missing from `raw` or not matching their md5. A file is read only when its size or modification time
    differs from the last time it matched (recorded in VERIFIED beside `raw`, where the folder is writable)."""
    record_path = raw.parent / VERIFIED
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        record = {}
    bad, seen = [], {}
    for name, md5 in spec.md5.items():
        try:
            stat = (raw / name).stat()
        except OSError:
            bad.append(name)
            continue
        seen[name] = [stat.st_size, stat.st_mtime_ns, md5]
        if record.get(name) != seen[name] and _md5(raw / name) != md5:
            bad.append(name)
    if not bad and seen != record:
        partial = record_path.with_name(f"{VERIFIED}.{os.getpid()}.part")
        with contextlib.suppress(OSError):
            partial.write_text(json.dumps(seen))
            partial.replace(record_path)
    return bad


def _copy_from_local(source: Path, raw: Path, spec: DatasetSpec) -> None:
    """Unpack (or copy) the four files from a local folder into `raw`, never using the network."""
    raw.mkdir(parents=True, exist_ok=True)
    for name, md5 in spec.md5.items():
        plain, packed = source / name, source / f"{name}.gz"
        partial = raw / f"{name}.{os.getpid()}.part"  # written aside, then renamed: safe with parallel runs
        if packed.exists():
            with gzip.open(packed, "rb") as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
        elif plain.exists():
            shutil.copyfile(plain, partial)
        else:
            raise DatasetNotFoundError(f"{spec.env}={source} has neither {name} nor {name}.gz.")
        if _md5(partial) != md5:
            partial.unlink()
            raise DatasetNotFoundError(f"{source / name}(.gz) is not the official {spec.title} file (md5 mismatch).")
        partial.replace(raw / name)


def _local_folder(spec: DatasetSpec) -> Path | None:
    """The folder named by the dataset's variable, else the first known folder that exists."""
    if os.environ.get(spec.env):
        return Path(os.environ[spec.env]).expanduser()
    return next((Path(folder) for folder in spec.known_folders if Path(folder).is_dir()), None)


def available_offline(dataset: Dataset = "mnist", root: Path | str = DATA_ROOT) -> bool:
    """Whether `dataset` can be prepared without the network: already unpacked under `root`, or in a local folder."""
    spec = _spec(dataset)
    return not _missing_or_bad(_raw_dir(Path(root), spec), spec) or _local_folder(spec) is not None


def prepare_mnist(root: Path | str = DATA_ROOT, dataset: Dataset = "mnist") -> Path:
    """Make sure `root/<MNIST|FashionMNIST>/raw` holds the four verified files and return `root`.

    Order: files already there; else the folder named by COURSE_MNIST_DIR / COURSE_FASHION_MNIST_DIR (offline,
    .gz or unpacked; for Fashion-MNIST also Debian's /usr/share/datasets/fashion-mnist); else torchvision's download.
    """
    spec, root = _spec(dataset), Path(root)
    raw = _raw_dir(root, spec)
    if not _missing_or_bad(raw, spec):
        return root
    local = _local_folder(spec)
    if local is not None:
        _copy_from_local(local, raw, spec)
    else:
        _download(root, raw, spec)
    bad = _missing_or_bad(raw, spec)
    if bad:
        raise DatasetNotFoundError(
            f"These files in {raw} are missing or corrupt: {', '.join(bad)}. Delete them and retry."
        )
    return root


def _download(root: Path, raw: Path, spec: DatasetSpec) -> None:
    """torchvision's download of the dataset into `raw`, or a DatasetNotFoundError that says what to do offline."""
    import torchvision.datasets

    try:
        for train in (True, False):
            getattr(torchvision.datasets, spec.torchvision_class)(root=str(root), train=train, download=True)
    except Exception as error:  # no network, blocked mirror, ...
        raise DatasetNotFoundError(
            f"{spec.title} could not be downloaded ({type(error).__name__}: {error}).\n"
            f"Offline? Put the four {spec.title} files (e.g. train-images-idx3-ubyte.gz) in a folder and set\n"
            f"  {spec.env}=/path/to/that/folder\n"
            f"or unpack them yourself into {raw}/ ."
        ) from None


def read_idx(path: Path, limit: int | None = None) -> torch.Tensor:
    """The first `limit` records (all when None) of an IDX file of unsigned bytes (the MNIST format: a 4-byte magic
    number, big-endian sizes, then the data) as a uint8 tensor; what torchvision's MNIST reads, without importing
    torchvision (a second: it imports torch._dynamo), and without reading the records it does not keep."""
    import torch

    with open(path, "rb") as file:
        magic = file.read(4)
        if len(magic) < 4 or magic[:3] != b"\x00\x00\x08" or magic[3] == 0:
            raise DatasetNotFoundError(f"{path} is not an IDX file of unsigned bytes")
        shape = struct.unpack(f">{magic[3]}I", file.read(4 * magic[3]))
        count = len(range(shape[0])[:limit])
        size = count * math.prod(shape[1:])
        data = file.read(size)
    if len(data) < size:
        raise DatasetNotFoundError(f"{path} is shorter than its header says: delete it and retry")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(count, *shape[1:])


def mnist_tensors(
    train: bool = True, root: Path | str = DATA_ROOT, dataset: Dataset = "mnist", limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `limit` examples (all when None) of MNIST (or Fashion-MNIST) as torchvision's dataset holds them,
    prepared offline when the files are local: uint8 images (N, 28, 28) and int64 labels (N,)."""
    spec = _spec(dataset)
    raw = _raw_dir(prepare_mnist(root, dataset), spec)
    split = "train" if train else "t10k"
    images = read_idx(raw / f"{split}-images-idx3-ubyte", limit)
    return images, read_idx(raw / f"{split}-labels-idx1-ubyte", limit).long()
