"""The MNIST / Fashion-MNIST loader: offline path, verification, transforms and the error when nothing is available."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
from pathlib import Path

import pytest
import torch

from starter import dataset_files
from starter.config import FASHION_ENV, MNIST_ENV
from starter.data import load_mnist, make_loader
from starter.dataset_files import DatasetNotFoundError, mnist_tensors, prepare_mnist, read_idx


@pytest.fixture
def no_network(monkeypatch):
    """Any download attempt fails, as on a machine without internet."""

    def refuse(self, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("torchvision.datasets.MNIST.download", refuse)  # imported here: it takes a second


def test_offline_files_are_unpacked_and_verified(tmp_path, monkeypatch, local_mnist, no_network):
    monkeypatch.setenv(MNIST_ENV, str(local_mnist))
    root = prepare_mnist(tmp_path)
    raw = sorted(p.name for p in (tmp_path / "MNIST" / "raw").iterdir())
    assert raw == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ]
    test = load_mnist(train=False, root=root)
    assert len(test) == 10_000 and test.tensors[0].shape == (10_000, 1, 28, 28)


@pytest.mark.parametrize("train", [True, False])
def test_the_tensors_are_torchvision_s(tmp_path, monkeypatch, local_mnist, no_network, train):
    """The course reads the IDX files itself (importing torchvision costs a second): the same tensors as
    torchvision.datasets.MNIST; and a file that is not IDX is refused by name."""
    import torchvision.datasets

    monkeypatch.setenv(MNIST_ENV, str(local_mnist))
    images, labels = mnist_tensors(train, tmp_path)
    reference = torchvision.datasets.MNIST(root=str(tmp_path), train=train, download=False)
    assert torch.equal(images, reference.data) and torch.equal(labels, reference.targets)
    assert images.dtype == reference.data.dtype and labels.dtype == reference.targets.dtype
    broken = tmp_path / "broken-idx3-ubyte"
    broken.write_bytes(b"\x00\x00\x0d\x03" + bytes(12))
    with pytest.raises(DatasetNotFoundError, match="broken-idx3-ubyte is not an IDX file"):
        read_idx(broken)


def test_a_limit_reads_only_the_first_records_and_a_short_file_is_named(tmp_path, monkeypatch, local_mnist, no_network):
    monkeypatch.setenv(MNIST_ENV, str(local_mnist))
    images, labels = mnist_tensors(False, tmp_path)
    first, first_labels = mnist_tensors(False, tmp_path, limit=100)
    assert torch.equal(first, images[:100]) and torch.equal(first_labels, labels[:100])
    assert torch.equal(mnist_tensors(False, tmp_path, limit=-9_990)[0], images[:-9_990])
    assert len(mnist_tensors(False, tmp_path, limit=20_000)[0]) == 10_000
    raw = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    short = tmp_path / "short-idx1-ubyte"
    short.write_bytes(raw.read_bytes()[:500])
    assert len(read_idx(short, limit=400)) == 400
    with pytest.raises(DatasetNotFoundError, match="short-idx1-ubyte is shorter than its header says"):
        read_idx(short)


def test_a_file_is_hashed_again_only_when_it_changed(tmp_path, monkeypatch, local_mnist, no_network):
    """prepare_mnist records each file's size and time once it matched its md5; a file changed since is hashed,
    and found corrupt, again."""
    monkeypatch.setenv(MNIST_ENV, str(local_mnist))
    prepare_mnist(tmp_path)
    raw, spec = tmp_path / "MNIST" / "raw", dataset_files.DATASETS["mnist"]
    assert (tmp_path / "MNIST" / dataset_files.VERIFIED).exists()
    hashed = []
    monkeypatch.setattr(dataset_files, "_md5", lambda path: hashed.append(path.name) or spec.md5[path.name])
    assert dataset_files._missing_or_bad(raw, spec) == [] and hashed == []
    labels = raw / "t10k-labels-idx1-ubyte"
    data = bytearray(labels.read_bytes())
    data[-1] ^= 1
    labels.write_bytes(bytes(data))
    monkeypatch.undo()
    assert dataset_files._missing_or_bad(raw, spec) == ["t10k-labels-idx1-ubyte"]


def test_transforms(tmp_path, monkeypatch, local_mnist, no_network):
    monkeypatch.setenv(MNIST_ENV, str(local_mnist))
    images, labels = load_mnist(train=False, form="float", limit=100, root=tmp_path).tensors
    assert images.dtype == torch.float32 and 0 <= images.min() and images.max() == 1 and labels.dtype == torch.int64
    binary, _ = load_mnist(train=False, form="binary", limit=100, root=tmp_path).tensors
    assert set(binary.unique().tolist()) == {0.0, 1.0}
    integers, _ = load_mnist(train=False, form="int", limit=100, root=tmp_path).tensors
    assert integers.dtype == torch.int64 and integers.max() == 255
    assert torch.equal(integers.float() / 255, images)
    with pytest.raises(ValueError, match="form must be one of"):
        load_mnist(train=False, form="png", root=tmp_path)


def test_no_files_and_no_network_gives_one_clear_error(tmp_path, monkeypatch, no_network):
    monkeypatch.delenv(MNIST_ENV, raising=False)
    with pytest.raises(DatasetNotFoundError) as error:
        prepare_mnist(tmp_path)
    message = str(error.value)
    assert MNIST_ENV in message and str(tmp_path / "MNIST" / "raw") in message


def test_local_folder_without_the_files(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv(MNIST_ENV, str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        prepare_mnist(tmp_path / "root")


def test_corrupt_local_file_is_rejected(tmp_path, monkeypatch, local_mnist, no_network):
    source = tmp_path / "source"
    shutil.copytree(local_mnist, source)
    with gzip.open(source / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(b"not mnist")
    monkeypatch.setenv(MNIST_ENV, str(source))
    with pytest.raises(DatasetNotFoundError, match="md5"):
        prepare_mnist(tmp_path / "root")
    assert not (tmp_path / "root" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").exists()


@pytest.fixture
def debian_fashion():
    """Debian's dataset-fashion-mnist folder (.ci/run installs the package)."""
    folder = dataset_files.DATASETS["fashion"].known_folders[0]
    if not Path(folder).is_dir():
        pytest.skip(
            "Debian's dataset-fashion-mnist is not installed (`sudo apt install dataset-fashion-mnist`; .ci/run does)"
        )
    return Path(folder)


def test_fashion_mnist_is_found_in_the_debian_folder(tmp_path, monkeypatch, debian_fashion, no_network):
    monkeypatch.delenv(FASHION_ENV, raising=False)
    images, labels = load_mnist(train=False, limit=500, root=tmp_path, dataset="fashion").tensors
    assert images.shape == (500, 1, 28, 28) and sorted(labels.unique().tolist()) == list(range(10))
    assert (tmp_path / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte").exists()
    assert len(load_mnist(train=True, root=tmp_path, dataset="fashion")) == 60_000
    assert dataset_files.DATASETS["fashion"].classes[9] == "ankle boot"


def test_fashion_mnist_missing_names_its_variable(tmp_path, monkeypatch, no_network):
    monkeypatch.delenv(FASHION_ENV, raising=False)
    monkeypatch.setitem(
        dataset_files.DATASETS, "fashion", dataclasses.replace(dataset_files.DATASETS["fashion"], known_folders=())
    )
    with pytest.raises(DatasetNotFoundError) as error:
        prepare_mnist(tmp_path, dataset="fashion")
    assert FASHION_ENV in str(error.value) and str(tmp_path / "FashionMNIST" / "raw") in str(error.value)
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_mnist(train=False, root=tmp_path, dataset="cifar")


def test_loader_slices_whole_batches():
    dataset = torch.utils.data.TensorDataset(torch.arange(10).float(), torch.arange(10))
    batches = list(make_loader(dataset, batch_size=4))
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    shuffled = torch.cat([x for x, _ in make_loader(dataset, batch_size=4, shuffle=True, seed=1)])
    assert sorted(shuffled.tolist()) == list(range(10)) and shuffled.tolist() != list(range(10))
