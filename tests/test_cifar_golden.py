"""Golden input: the 20 real CIFAR-10 test images shipped in the foolbox==3.3.4 wheel (MIT).

The PNGs in ``tests/data/foolbox_cifar10/`` were extracted unchanged from
``foolbox-3.3.4-py3-none-any.whl`` (members ``foolbox/data/cifar10_{i}_{label}.png``). The test
decodes them with Pillow, writes them in CIFAR-10's python-pickle batch layout with its own code,
and checks that both packages' readers, the foolbox-wheel reader and the CIFAR model path give
back exactly these pixels and labels.
"""

import pickle
import re
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

import basis_ode
import noisy_dyn

DATA = Path(__file__).parent / "data" / "foolbox_cifar10"


def _golden():
    files = sorted(DATA.glob("cifar10_*.png"))
    assert len(files) == 20
    labels = np.array([int(re.fullmatch(r"cifar10_\d+_(\d)\.png", f.name)[1]) for f in files])
    images = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.uint8) for f in files])
    assert images.shape == (20, 32, 32, 3)
    return images, labels


def _write_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)  # 1024 R, 1024 G, 1024 B
    with open(path, "wb") as f:
        pickle.dump({b"data": rows, b"labels": [int(v) for v in labels]}, f, protocol=2)


def test_cifar_readers_return_the_real_images(tmp_path):
    images, labels = _golden()
    _write_batch(tmp_path / "data_batch_1", images, labels)
    _write_batch(tmp_path / "test_batch", images, labels)

    test_x, test_y = basis_ode.data.load_cifar10(tmp_path, val_size=5).test
    np.testing.assert_array_equal(np.rint(test_x * 255).astype(np.uint8), images)
    np.testing.assert_array_equal(test_y, labels)

    seq_x, seq_y = noisy_dyn.data.load_cifar10(tmp_path, val_size=5).test
    assert seq_x.shape == (20, 1024, 3)
    t = np.arange(1024)
    np.testing.assert_array_equal(
        np.rint(seq_x * 255).astype(np.uint8), images[:, t // 32, t % 32, :]
    )
    np.testing.assert_array_equal(seq_y, labels)


def test_foolbox_wheel_reader_and_the_cifar_model_path(tmp_path):
    images, labels = _golden()
    wheel = tmp_path / "foolbox-like.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for f in sorted(DATA.glob("cifar10_*.png")):
            z.write(f, f"foolbox/data/{f.name}")
    x, y = basis_ode.data.read_foolbox_samples(wheel, "cifar10", sha256=None)
    np.testing.assert_allclose(x, images / 255.0, atol=1e-7)
    np.testing.assert_array_equal(y, labels)

    model = basis_ode.ConvODENet(num_classes=10, width=4, basis=basis_ode.PiecewiseConstant(2))
    variables = model.init(jax.random.key(0), jnp.asarray(x[:2]))
    logits, updated = model.apply(variables, jnp.asarray(x), train=True, mutable=["batch_stats"])
    assert logits.shape == (20, 10) and bool(jnp.all(jnp.isfinite(logits)))
    stats = jax.tree_util.tree_leaves(updated["batch_stats"])
    assert all(bool(jnp.all(jnp.isfinite(s))) for s in stats)
