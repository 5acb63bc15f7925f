"""AVSpeechDataset: on-the-fly training mixtures, fixed val/test manifests, aligned audio and video."""
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from asteroid_avspeech.audio import change_speed, fit_length
from asteroid_avspeech.data import layout
from asteroid_avspeech.data.dataset import AVSpeechDataset
from asteroid_avspeech.data.manifests import make_mixtures, read_source
from asteroid_avspeech.data.mixing import mix
from test_mixtures import FPS, LIP, SPEAKERS, SR, make_data_root, make_noise_dir


@pytest.fixture(scope="module")
def mixtures(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds") / "data"
    make_data_root(root, SPEAKERS[:10])
    noise = make_noise_dir(tmp_path_factory.mktemp("noise"))
    make_mixtures(root, noise_dir=noise, conditions=["2S_clean", "2S_noise", "3S_clean"], n_val=3, n_test=4,
                  val_frac=0.25, test_frac=0.25, seed=0)  # fmt: skip
    return root / "mixtures"


def test_train_item_shapes_exact_sum_and_distinct_speakers(mixtures):
    dataset = AVSpeechDataset(mixtures, "train", "3S_clean", segment=1.0, return_id=True)
    assert len(dataset) == 8  # 4 training speakers x 2 clips
    for idx in range(len(dataset)):
        mixture, sources, visual, item_id = dataset[idx]
        assert mixture.shape == (SR,) and sources.shape == (3, SR) and mixture.dtype == torch.float32
        assert visual.shape == (3, FPS, LIP, LIP) and visual.dtype == torch.uint8
        assert torch.equal(mixture, sources.sum(0))
        assert mixture.abs().max() <= 0.99 + 1e-6
        speakers = [layout.youtube_id_of(c) for c in item_id.split("+")]
        assert len(set(speakers)) == 3 and item_id.split("+")[0] == dataset.clips[idx]


def test_audio_and_video_crops_aligned(mixtures):
    """The staircase audio encodes the frame index: |sample| of frame f is proportional to f + 1."""
    dataset = AVSpeechDataset(mixtures, "train", "2S_clean", segment=0.4, seed=1)
    for idx in range(4):
        _, sources, visual = dataset[idx]
        for source, lips in zip(sources.numpy(), visual.numpy()):
            first = int(lips[0, 0, 0])
            level = np.abs(source).reshape(-1, SR // FPS).mean(1)  # one value per video frame
            np.testing.assert_allclose(level / level[0], (np.arange(10) + first + 1) / (first + 1), rtol=2e-3)
            assert np.array_equal(lips[:, 0, 0], np.arange(first, first + 10))


@pytest.mark.parametrize("speed", [0.8, 1.25])
def test_speed_perturbation_keeps_voice_and_lips_in_sync(mixtures, speed):
    """A source played ``speed`` times faster starts at its first lip frame, and its lips advance
    ``speed`` frames per output frame."""
    dataset = AVSpeechDataset(mixtures, "train", "2S_clean", segment=0.4, seed=1, speeds=(speed,), return_id=True)
    for idx in range(4):
        mixture, sources, visual, item_id = dataset[idx]
        assert mixture.shape == (SR * 2 // 5,) and torch.equal(mixture, sources.sum(0))
        for clip_id, source, lips in zip(item_id.split("+"), sources.numpy(), visual.numpy()):
            first = int(lips[0, 0, 0])
            assert np.array_equal(lips[:, 0, 0], first + np.floor(np.arange(10) * speed))
            span = round(len(source) * speed)
            expected = fit_length(change_speed(read_source(mixtures.parent, clip_id, span, first * SR // FPS),
                                               speed, SR), len(source))  # fmt: skip
            assert np.corrcoef(source, expected)[0, 1] > 0.999
    both = AVSpeechDataset(mixtures, "train", "2S_clean", segment=0.4, seed=1, speeds=(0.8, 1.25))
    steps = {int(np.diff(both[idx][2][0, :, 0, 0].numpy()).max()) for idx in range(8)}
    assert steps == {1, 2}  # 0.8: lips advance at most 1 frame per frame; 1.25: sometimes 2
    with pytest.raises(ValueError, match="speed factors"):
        AVSpeechDataset(mixtures, "train", "2S_clean", speeds=(0.0, 1.0))


def test_training_mixtures_seeded_per_epoch(mixtures):
    dataset = AVSpeechDataset(mixtures, "train", "2S_noise", segment=0.5, seed=7)
    first = dataset[3]
    assert all(torch.equal(a, b) for a, b in zip(first, dataset[3]))
    noise = first[0] - first[1].sum(0)
    assert noise.abs().max() > 0  # noisy condition adds noise outside the sources
    dataset.set_epoch(1)
    assert not torch.equal(first[0], dataset[3][0])
    unseeded = AVSpeechDataset(mixtures, "train", n_src=2, segment=0.5, seed=None)
    torch.manual_seed(0)
    drawn = unseeded[3][0]
    assert not torch.equal(drawn, unseeded[3][0])  # a new mixture on every access ...
    torch.manual_seed(0)
    assert torch.equal(drawn, unseeded[3][0])  # ... reproducible from torch's seed
    with pytest.raises(ValueError, match="contradicts"):
        AVSpeechDataset(mixtures, "train", "2S_clean", n_src=3)


def test_fixed_manifest_replayed_exactly(mixtures):
    dataset = AVSpeechDataset(mixtures, "test", "2S_clean", segment=None, return_id=True)
    with open(mixtures / "test_2S_clean.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(dataset) == len(rows) == 4
    for idx, (row, (mixture, sources, visual, mixture_id)) in enumerate(zip(rows, dataset)):
        clips = [row["clip_1"], row["clip_2"]]
        length = min(dataset.n_samples[c] for c in clips)
        parts = np.stack([read_source(dataset.data_dir, c, length) for c in clips])
        gains = np.array([float(row["gain_1"]), float(row["gain_2"])])
        expected, scaled, _, _ = mix(parts, gains, scale=float(row["scale"]))
        assert mixture_id == row["mixture_id"] == dataset.mixture_id(idx)
        assert torch.equal(mixture, torch.from_numpy(expected))
        assert torch.equal(sources, torch.from_numpy(scaled))
        assert visual.shape == (2, length * FPS // SR, LIP, LIP)
        numbers = {int(np.load(dataset.data_dir / "visual" / c / "lips.npy")[0, 0, 1]) for c in clips}
        assert {int(v) for v in visual[:, 0, 0, 1]} == numbers
    cropped = AVSpeechDataset(mixtures, "test", "2S_clean", segment=1.0)
    assert torch.equal(cropped[0][0], dataset[0][0][:SR])


def test_batches_and_infos(mixtures):
    dataset = AVSpeechDataset(mixtures, "val", "2S_noise", segment=1.0)
    mixture, sources, visual = next(iter(DataLoader(dataset, batch_size=3)))
    assert (mixture.shape, sources.shape, visual.shape) == ((3, SR), (3, 2, SR), (3, 2, FPS, LIP, LIP))
    infos = dataset.get_infos()
    assert infos["dataset"] == AVSpeechDataset.dataset_name == "AVSpeech" and infos["task"] == "sep_noisy"
    assert infos["licenses"][0]["license"] == "CC BY 4.0"
    license_keys = {"title", "title_link", "author", "author_link", "license", "license_link", "non_commercial"}
    assert set(infos["licenses"][0]) == license_keys  # asteroid's (LibriMix) licence format
    assert AVSpeechDataset(mixtures, "val", "2S_clean", segment=None).get_infos()["task"] == "sep_clean"


def test_embeddings_and_missing_visual_errors(mixtures):
    data = mixtures.parent
    with pytest.raises(FileNotFoundError, match="stage 2 .*embeddings"):
        AVSpeechDataset(mixtures, "val", "2S_clean", segment=None, visual="embeddings")
    for clip_dir in (data / "visual").iterdir():
        if clip_dir.is_dir():
            n_frames = np.load(clip_dir / "lips.npy", mmap_mode="r").shape[0]
            np.save(clip_dir / "embeddings.npy", np.ones((n_frames, 512), np.float16))
    _, _, emb = AVSpeechDataset(mixtures, "val", "2S_clean", segment=0.4, visual="embeddings")[0]
    assert emb.shape == (2, 10, 512) and emb.dtype == torch.float32 and float(emb.mean()) == 1.0
    with open(mixtures / "test_2S_clean.csv", newline="") as f:
        missing = next(csv.DictReader(f))["clip_1"]
    shutil.move(str(data / "visual" / missing), str(data / "moved"))
    try:
        with pytest.raises(FileNotFoundError, match=f"{missing}.*stage 2"):
            AVSpeechDataset(mixtures, "test", "2S_clean", segment=None)
    finally:
        shutil.move(str(data / "moved"), str(data / "visual" / missing))
