"""Worker processes of data preparation and metrics use one thread each."""
import os

from asteroid_avspeech.parallel import THREAD_POOL_ENV, worker_pool


def _thread_pools():
    import cv2
    import torch

    return torch.get_num_threads(), cv2.getNumThreads(), {name: os.environ.get(name) for name in THREAD_POOL_ENV}


def test_workers_get_one_thread_per_pool_and_the_environment_is_restored(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    before = {name: os.environ.get(name) for name in THREAD_POOL_ENV}
    with worker_pool(1) as pool:
        torch_threads, cv2_threads, env = pool.submit(_thread_pools).result()
    assert (torch_threads, cv2_threads) == (1, 1)
    assert env == {name: "1" for name in THREAD_POOL_ENV}
    assert {name: os.environ.get(name) for name in THREAD_POOL_ENV} == before
