"""Long inputs in overlapping windows: the window settings, a bounded view of a stream of blocks,
the overlap-add that blends the model's windows back into one stream, and the walk over the
windows that ties them together (:func:`iter_blended_windows`).

Used by the video path (:func:`asteroid_avspeech.separate.iter_separation`, windows on video
frame boundaries, outputs in face order) and by the sound-file path
(:func:`asteroid_avspeech.file_routing.iter_sound_separation`, outputs in an arbitrary order per
window, aligned with :func:`best_order`). Memory is bounded by one window whatever the length
of the input. numpy only, so that importing it costs nothing.
"""
import itertools
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Tuple

import numpy as np


@dataclass
class ChunkSettings:
    """How a long input is cut for the model.

    Attributes:
        chunk_seconds: window length given to the model at once.
        overlap_seconds: overlap of consecutive windows (blended with a triangular cross-fade).
        frame_chunk: video frames decoded at once (memory of a decoded block).
    """

    chunk_seconds: float = 8.0
    overlap_seconds: float = 1.0
    frame_chunk: int = 250

    def window_hop(self, rate: float) -> Tuple[int, int]:
        """``(window, hop)`` in steps of ``1 / rate`` s: video frames at the video's fps (windows
        then start on frame boundaries) or samples at a sample rate.

        Raises:
            ValueError: a window shorter than 2 steps or a negative overlap.
        """
        window = max(1, round(self.chunk_seconds * rate))
        overlap = min(round(self.overlap_seconds * rate), window - 1)
        if window < 2 or overlap < 0:
            raise ValueError(
                f"chunk_seconds={self.chunk_seconds} must span at least 2 steps of 1/{rate:g} s and "
                f"overlap_seconds={self.overlap_seconds} must be >= 0."
            )
        return window, window - overlap


class BlockWindow:
    """Items of a stream of arrays (concatenated along axis 0) by absolute index, keeping only
    those not yet released: memory is bounded by the largest window plus one block."""

    def __init__(self, blocks: Iterator[np.ndarray]):
        self._blocks = blocks
        self._data: Optional[np.ndarray] = None
        self._start = 0  # absolute index of self._data[0]
        self.exhausted = False

    @property
    def end(self) -> int:
        return self._start + (0 if self._data is None else len(self._data))

    def get(self, start: int, stop: int) -> Optional[np.ndarray]:
        """Items ``[start, stop)`` (fewer at the end of the stream; None if the stream is empty)."""
        parts = [] if self._data is None else [self._data]
        end = self.end
        while end < stop and not self.exhausted:
            block = next(self._blocks, None)
            if block is None:
                self.exhausted = True
            else:
                parts.append(block)
                end += len(block)
        if not parts:
            return None
        self._data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return self._data[max(start - self._start, 0): max(stop - self._start, 0)]

    def release(self, before: int) -> None:
        """Forget the items before absolute index ``before``."""
        if self._data is not None and before > self._start:
            drop = min(before - self._start, len(self._data))
            self._data, self._start = self._data[drop:], self._start + drop


def triangle(length: int) -> np.ndarray:
    """Triangular cross-fade weights ``(length,)`` in (0, 1] (``demucs.apply``)."""
    half = length // 2
    ramp = np.concatenate([np.arange(1, half + 1), np.arange(length - half, 0, -1)])
    return (ramp / ramp.max()).astype(np.float32)


class OverlapAdd:
    """Blends windows of estimates ``(n_rows, n)`` that overlap, each weighted by :func:`triangle`,
    and hands on the samples that no later window will touch.

    Holds only the samples from :attr:`done` to the end of the last window added.
    """

    def __init__(self, n_rows: int):
        self._acc = np.zeros((n_rows, 0), np.float32)
        self._weight = np.zeros(0, np.float32)
        self.done = 0  # samples before `done` have been handed on

    def add(self, start: int, estimate: np.ndarray) -> None:
        """Blend ``estimate`` ``(n_rows, n)``, the samples ``[start, start + n)`` (``start >= done``)."""
        n = estimate.shape[1]
        grow = start + n - (self.done + self._acc.shape[1])
        if grow > 0:
            self._acc = np.concatenate([self._acc, np.zeros((len(self._acc), grow), np.float32)], axis=1)
            self._weight = np.concatenate([self._weight, np.zeros(grow, np.float32)])
        w = triangle(n)
        self._acc[:, start - self.done: start - self.done + n] += estimate * w
        self._weight[start - self.done: start - self.done + n] += w

    def blended(self, start: int, stop: int) -> np.ndarray:
        """The blend so far of the samples ``[start, stop)`` (``done <= start``): ``(n_rows, m)``,
        ``m`` up to the end of the last window added, zeros where no window was added."""
        weight = self._weight[start - self.done: stop - self.done]
        return self._acc[:, start - self.done: stop - self.done] / np.maximum(weight, 1e-12)

    def pop(self, stop: int) -> Tuple[int, np.ndarray]:
        """Hand on the finished samples ``[done, stop)``: ``(done, (n_rows, stop - done))``."""
        k = stop - self.done
        start, out = self.done, self._acc[:, :k] / self._weight[:k]
        self._acc, self._weight, self.done = self._acc[:, k:], self._weight[k:], stop
        return start, out


def best_order(reference: np.ndarray, estimate: np.ndarray) -> Tuple[int, ...]:
    """The order of ``estimate``'s rows that best matches ``reference``'s: the permutation with the
    largest sum of normalised correlations (as ``asteroid.dsp.LambdaOverlapAdd`` reorders chunks).

    Args:
        reference: ``(n_src, n)``, e.g. the blend so far of an overlap.
        estimate: ``(n_src, n)``, the new window's estimates of the same samples.

    Returns:
        ``order`` such that ``estimate[list(order)]`` lines up with ``reference``.
    """
    ref = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    est = estimate / np.maximum(np.linalg.norm(estimate, axis=1, keepdims=True), 1e-12)
    similarity = ref @ est.T  # (n_src, n_src): reference row i against estimate row j
    rows = range(len(ref))
    return max(itertools.permutations(rows), key=lambda order: sum(similarity[i, j] for i, j in zip(rows, order)))


def iter_blended_windows(
    audio: BlockWindow,
    n_rows: int,
    window: int,
    hop: int,
    separate: Callable[[int, np.ndarray], np.ndarray],
    to_sample: Callable[[int], int] = lambda step: step,
    align_order: bool = False,
) -> Iterator[Tuple[int, np.ndarray]]:
    """Walk a stream in windows of ``window`` steps every ``hop`` steps, separate each window and
    yield the blend of the windows piece by piece, as soon as each piece is final.

    Steps are samples, or video frames with ``to_sample`` mapping a frame to its first sample
    (windows then start on frame boundaries). The last window is the first one that comes back
    short (the stream's end).

    Args:
        audio: the samples.
        n_rows: rows of every estimate (outputs).
        window: window length in steps.
        hop: steps from one window's start to the next.
        separate: ``separate(step, wav)`` -> ``(n_rows, len(wav))`` estimates of the window that
            starts at ``step``, ``wav`` its samples ``(n,)``.
        to_sample: index of the first sample of a step.
        align_order: put each window's rows in the order that continues the blend so far
            (:func:`best_order` on the overlap), for outputs whose order is arbitrary.

    Yields:
        ``(start_sample, pieces)``, ``pieces`` ``(n_rows, m)`` float32 for the samples
        ``[start_sample, start_sample + m)``; the pieces tile the stream (nothing for an empty one).
    """
    blend = OverlapAdd(n_rows)
    step = 0
    while True:
        start, stop = to_sample(step), to_sample(step + window)
        wav = audio.get(start, stop)
        if wav is None or len(wav) == 0:
            return
        estimate = separate(step, wav)
        if align_order and start > 0:
            overlap = blend.blended(start, start + len(wav))
            estimate = estimate[list(best_order(overlap, estimate[:, :overlap.shape[1]]))]
        blend.add(start, estimate)
        last = len(wav) < stop - start
        yield blend.pop(start + len(wav) if last else to_sample(step + hop))
        if last:
            return
        step += hop
        audio.release(to_sample(step))
