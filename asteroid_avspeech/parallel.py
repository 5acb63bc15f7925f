"""Worker processes that use one core each, for data preparation (stages 0-2) and stage 5's metrics.

torch (OpenMP), OpenBLAS/MKL and OpenCV each start a pool of one thread per core in every process,
so W workers on C cores would run W x C busy threads and oversubscribe the machine (stage 5 took
5 min 24 s instead of 1 min 17 s that way, README). Pools of workers therefore start inside
:func:`single_threaded_children`, which sizes the OpenMP/BLAS pools of the processes started in it
(they read the environment at start-up), and run :func:`one_thread` as their initializer, which
sizes torch's and OpenCV's pools in the worker itself. :func:`worker_pool` does both. Workers are
spawned, never forked: a fork copies a process whose thread pools are running but not their
threads, and a forked worker that resized its pools hung in the full test suite.
"""
import contextlib
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Callable, Iterator, Sequence

import torch

#: Environment variables that size the thread pools of OpenMP (torch), OpenBLAS and MKL.
THREAD_POOL_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def single_threaded_children() -> Iterator[None]:
    """Processes started inside this block get one OpenMP/BLAS thread each, through the environment
    they inherit (this process' own thread pools are sized at start-up and do not change)."""
    saved = {name: os.environ.get(name) for name in THREAD_POOL_ENV}
    os.environ.update({name: "1" for name in THREAD_POOL_ENV})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def one_thread() -> None:
    """Pool initializer: torch and OpenCV use one thread in this worker process."""
    import cv2  # the video pipeline's dependency; loaded here only in workers

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


@contextlib.contextmanager
def worker_pool(workers: int, initializer: Callable[..., None] = one_thread,
                initargs: Sequence[Any] = ()) -> Iterator[ProcessPoolExecutor]:
    """``workers`` spawned processes with one thread per pool each.

    Args:
        initializer: runs first in every worker; one that replaces :func:`one_thread` must call it.
    """
    with single_threaded_children(), ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=initializer, initargs=tuple(initargs)
    ) as pool:
        yield pool
