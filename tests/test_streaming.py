"""Training on data larger than the memory it may use: a memory-mapped .npy read batch by batch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from deltaprop import MLP

SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from deltaprop import MLP

    limit = int(sys.argv[3]) << 20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))  # heap and private memory; the file is not counted
    X = np.load(sys.argv[1], mmap_mode="r")
    y = np.load(sys.argv[2])
    try:
        np.ones(X.shape, dtype=X.dtype)  # proof that the data could not be loaded into memory
        print("the limit is too high for this test")
        sys.exit(3)
    except MemoryError:
        pass
    net = MLP([X.shape[1], 16, 2], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0)
    history = net.fit(X, y, epochs=1, batch_size=512, lr=0.01, seed=0, validation_split=0.05, verbose=0)
    print(history.accuracy[-1], history.val_accuracy[-1])
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_DATA semantics are Linux's")
def test_fit_on_a_memory_mapped_file_larger_than_the_memory_limit(tmp_path):
    n, d = 1_200_000, 100  # 480 MB of float32
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(n, d))
    w = rng.normal(size=d)
    y = np.empty(n, dtype=np.int64)
    for lo in range(0, n, 100_000):
        chunk = rng.normal(size=(min(100_000, n - lo), d)).astype(np.float32)
        X[lo : lo + len(chunk)] = chunk
        y[lo : lo + len(chunk)] = chunk @ w > 0
    X.flush()
    del X
    np.save(tmp_path / "y.npy", y)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), "220"],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    acc, val_acc = map(float, proc.stdout.split())
    assert acc > 0.9 and val_acc > 0.9  # a linear teacher: one epoch learns it


def test_memory_mapped_input_is_not_copied_and_matches_in_memory_training(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    a = MLP([5, 8, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    b = MLP([5, 8, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    a.fit(Xm, y, epochs=2, batch_size=64, shuffle=False, lr=0.01, verbose=0)
    b.fit(X, y, epochs=2, batch_size=64, shuffle=False, lr=0.01, verbose=0)
    np.testing.assert_array_equal(a.theta, b.theta)  # without shuffling the batches are the same rows
    c = MLP([5, 8, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    history = c.fit(Xm, y, epochs=3, batch_size=64, seed=0, lr=0.01, verbose=0)  # window-shuffled
    assert history.accuracy[-1] > 0.9


def test_memory_mapped_nan_is_found(tmp_path):
    X = np.zeros((10, 3), dtype=np.float32)
    X[7, 1] = np.nan
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(ValueError, match=r"NaN or infinite values \(the first at row 7, column 1: nan\)"):
        MLP([3, 1]).fit(np.load(tmp_path / "X.npy", mmap_mode="r"), np.zeros(10), verbose=0)


def test_memory_mapped_nan_is_found_past_the_first_chunk(tmp_path):
    # checked 16 MB at a time: a bad number in a later chunk is reported by its row in the whole file
    X = np.zeros((1100, 4096), dtype=np.float32)  # 1,024 rows per chunk
    X[1030, 5] = -np.inf
    X[1090, 0] = np.nan
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(ValueError, match=r"the first at row 1030, column 5: -inf"):
        MLP([4096, 1]).fit(np.load(tmp_path / "X.npy", mmap_mode="r"), np.zeros(1100), verbose=0)
    ints = np.lib.format.open_memmap(tmp_path / "i.npy", mode="w+", dtype=np.int16, shape=(20, 3))
    ints[:] = 1
    ints.flush()
    MLP([3, 1]).fit(np.load(tmp_path / "i.npy", mmap_mode="r"), np.zeros(20), epochs=1, verbose=0)  # ints: finite
