"""Long inputs in windows: overlap-add, output-order alignment, sound files of any length."""
import itertools
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from asteroid.dsp import LambdaOverlapAdd

from asteroid_avspeech import LookingToListen
from asteroid_avspeech.file_routing import iter_sound_separation, separate_sound_file, unwrap_overlap_add
from asteroid_avspeech.streaming import BlockWindow, ChunkSettings, OverlapAdd, best_order, iter_blended_windows

SR = 16000


class BandSplitter(torch.nn.Module):
    """Separates a mixture by frequency (below / above 1 kHz) and, as a model without faces may,
    gives its two outputs in a different order at every call."""

    n_src, sample_rate = 2, SR

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # where the model lives
        self.calls = 0

    def forward_wav(self, wav, visual=None):
        spec = torch.fft.rfft(wav)
        low = torch.fft.rfftfreq(wav.shape[-1], 1 / SR) < 1000
        bands = torch.stack([torch.fft.irfft(spec * low, wav.shape[-1]), torch.fft.irfft(spec * ~low, wav.shape[-1])], 1)
        self.calls += 1
        return bands.flip(1) if self.calls % 2 else bands


def si_sdr(estimate: np.ndarray, target: np.ndarray) -> float:
    scaled = (estimate @ target) / (target @ target) * target
    return float(10 * np.log10(np.sum(scaled ** 2) / np.sum((scaled - estimate) ** 2)))


def test_overlap_add_of_exact_windows_gives_back_the_signal():
    signal = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    blend, pieces = OverlapAdd(2), []
    for start in range(0, 1000, 300):  # windows of 400, hop 300
        window = signal[:, start:start + 400]
        blend.add(start, window)
        pieces.append(blend.pop(start + 300 if window.shape[1] == 400 else 1000))
    assert [start for start, _ in pieces] == [0, 300, 600, 900]
    np.testing.assert_allclose(np.concatenate([p for _, p in pieces], axis=1), signal, rtol=1e-5)


def test_best_order_follows_the_reference():
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((3, 500))
    estimate = 5.0 * reference[[2, 0, 1]] + 0.1 * rng.standard_normal((3, 500))
    order = best_order(reference, estimate)
    assert order == (1, 2, 0)
    np.testing.assert_allclose(estimate[list(order)], 5.0 * reference, atol=1.0)
    assert best_order(np.zeros((2, 10)), estimate[:2, :10]) == (0, 1)  # silence: as it came


def test_windows_on_frame_boundaries_blend_back_into_the_stream():
    """Windows of 7 frames every 5 (640 samples per frame) over 3 s; each window's estimates are the
    window itself times (1, -1): the blend gives back the stream on both rows, piece by piece."""
    signal = np.random.default_rng(3).standard_normal(3 * SR).astype(np.float32)
    windows = []

    def separate(frame, wav):
        windows.append((frame, len(wav)))
        return np.stack([wav, -wav])

    blocks = iter(np.array_split(signal, 7))
    pieces = list(iter_blended_windows(BlockWindow(blocks), 2, 7, 5, separate, to_sample=lambda frame: frame * 640))
    assert [frame for frame, _ in windows] == list(range(0, 75, 5)) and windows[-1][1] == 3 * SR - 70 * 640
    assert [start for start, _ in pieces] == [k * 3200 for k in range(15)]
    blended = np.concatenate([piece for _, piece in pieces], axis=1)
    np.testing.assert_allclose(blended, np.stack([signal, -signal]), atol=1e-5)
    assert list(iter_blended_windows(BlockWindow(iter([])), 2, 7, 5, separate)) == []


def test_chunk_settings_in_frames_and_samples():
    assert ChunkSettings(8.0, 1.0).window_hop(25) == (200, 175)
    assert ChunkSettings(0.5, 0.1).window_hop(SR) == (8000, 6400)
    with pytest.raises(ValueError, match="at least 2 steps"):
        ChunkSettings(0.01, 0.0).window_hop(25)


def test_sound_file_windows_keep_each_voice_on_one_output(tmp_path):
    """Each window's outputs come in another order; aligned on the overlaps, every output file holds
    one voice from start to end (a 300 Hz and a 3 kHz tone, 48 kHz stereo file)."""
    t = np.arange(int(5.3 * 48000)) / 48000
    low, high = 0.3 * np.sin(2 * np.pi * 300 * t), 0.3 * np.sin(2 * np.pi * 3000 * t)
    path = tmp_path / "tones.wav"
    sf.write(str(path), np.stack([low + high, low + high], 1), 48000)
    model = BandSplitter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notes on resampling and channels (tested in test_separate)
        separate_sound_file(model, path, tmp_path / "out", chunks=ChunkSettings(1.0, 0.25), progress=False)
    assert model.calls == 7  # windows of 1 s every 0.75 s over 5.3 s
    tracks = [sf.read(str(tmp_path / "out" / f"tones_est{k}.wav"))[0] for k in (1, 2)]
    assert all(len(track) == len(t) for track in tracks)
    order = (0, 1) if si_sdr(tracks[0], low) > si_sdr(tracks[1], low) else (1, 0)
    assert si_sdr(tracks[order[0]], low) > 25 and si_sdr(tracks[order[1]], high) > 25


def test_nan_in_a_sound_file_is_refused_before_any_track_is_written(tmp_path):
    samples = np.full(3 * SR, 0.1, np.float32)
    samples[int(2.5 * SR)] = np.inf
    path = tmp_path / "corrupt.wav"
    sf.write(str(path), samples, SR, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"corrupt.wav: NaN or infinite sample at 2.50 s"):
        separate_sound_file(BandSplitter(), path, tmp_path / "out", chunks=ChunkSettings(1.0, 0.25), progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_one_window_is_the_plain_model_call(tmp_path):
    torch.manual_seed(0)
    model = LookingToListen(n_src=2, preset="small", lstm_hidden=32, fc_dims=[32])
    wav = (0.1 * np.random.default_rng(2).standard_normal(int(1.5 * SR))).astype(np.float32)
    whole = np.concatenate(list(iter_sound_separation(model, iter([wav]), SR)), axis=1)
    np.testing.assert_allclose(whole, model.forward_wav(torch.from_numpy(wav)[None])[0].numpy(), atol=1e-6)


def test_two_hour_sound_stream_is_read_window_by_window():
    """Only the blocks of the first windows are read from a 2-hour stream (memory: one window)."""
    pulled = [0]

    def blocks():
        for _ in range(2 * 3600):
            pulled[0] += 1
            yield np.full(SR, 0.01, np.float32)  # 1 s blocks

    pieces = list(itertools.islice(iter_sound_separation(BandSplitter(), blocks(), SR, ChunkSettings(2.0, 0.5)), 3))
    assert [piece.shape for piece in pieces] == [(2, int(1.5 * SR))] * 3 and pulled[0] <= 6


def test_asteroid_overlap_add_wrapper_gives_our_model_and_its_windows():
    model = LookingToListen(n_src=2, preset="small", lstm_hidden=32, fc_dims=[32])
    ours, chunks = unwrap_overlap_add(LambdaOverlapAdd(model, n_src=None, window_size=32000, hop_size=24000))
    assert ours is model and (chunks.chunk_seconds, chunks.overlap_seconds) == (2.0, 0.5)
    assert unwrap_overlap_add(model) == (model, None)
    assert unwrap_overlap_add(torch.nn.Linear(1, 1)) == (None, None)


def test_block_window_releases_what_it_no_longer_needs():
    window = BlockWindow(iter([np.arange(4), np.arange(4, 8), np.arange(8, 10)]))
    np.testing.assert_array_equal(window.get(2, 6), [2, 3, 4, 5])
    window.release(5)
    np.testing.assert_array_equal(window.get(5, 20), [5, 6, 7, 8, 9])
    assert window.exhausted and window.end == 10
