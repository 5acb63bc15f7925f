"""Stage 1: exact-length 16-bit mono wavs from mp4 clips; bad clips dropped with a reason."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asteroid_avspeech.data import layout
from asteroid_avspeech.data.audio_prep import (
    ClipDropped,
    extract_corpus_audio,
    fit_clip_length,
    wav_path,
)
from asteroid_avspeech.audio import resample, rms_db
from asteroid_avspeech.video.decode import read_audio
from video_fixtures import write_mp4

REPO = Path(__file__).resolve().parents[1]
GREY = np.full((75, 32, 32, 3), 128, np.uint8)


def sine(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.4) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def add_clip(corpus: Path, youtube_id: str, start: float, end: float, audio=None, rate=16000) -> str:
    """Write ``audio`` (channels, time) as the mp4 of a corpus row and append the row to the CSV."""
    clip_id = layout.make_clip_id(youtube_id, start, end)
    write_mp4(layout.clip_path(corpus, clip_id), GREY[: max(1, round((end - start) * 25))], audio=audio,
              sample_rate=rate)  # fmt: skip
    with open(layout.csv_path(corpus), "a") as f:
        f.write(f"{youtube_id},{start},{end},0.5,0.5\n")
    return clip_id


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    corpus = tmp_path_factory.mktemp("stage1") / "my corpus"
    left_only = np.stack([sine(3.0, 44100), np.zeros(round(3.0 * 44100), np.float32)])
    add_clip(corpus, "stereo44k_1", 10.0, 13.0, left_only, rate=44100)
    add_clip(corpus, "silentClip1", 0.0, 3.0, np.zeros((1, 48000), np.float32))
    add_clip(corpus, "noAudioClp1", 0.0, 3.0, None)
    add_clip(corpus, "shortAudio1", 0.0, 3.0, sine(2.0, 16000)[None])  # CSV says 3 s, audio 2 s
    add_clip(corpus, "nearlyFull1", 1.5, 4.7, sine(3.0, 16000)[None])  # 6 % short: zero-padded
    corrupt = layout.clip_path(corpus, layout.make_clip_id("corruptClp1", 0.0, 3.0))
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with open(layout.csv_path(corpus), "a") as f:
        f.write("corruptClp1,0.0,3.0,0.5,0.5\nmissingClp1,0.0,3.0,0.5,0.5\n")
    return corpus


@pytest.fixture(scope="module")
def stage1(corpus):
    return extract_corpus_audio(corpus, workers=2, min_rms_db=-50.0)


def read_rows(path: Path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_aac_decodes_longer_than_csv(corpus):
    """The AAC padding this stage must trim really exists."""
    decoded = read_audio(layout.clip_path(corpus, "stereo44k_1_00010000_00013000"))
    assert len(decoded) > 48000


def test_stereo_44k_downmixed_trimmed_16bit(corpus, stage1):
    wav = wav_path(corpus, "stereo44k_1_00010000_00013000")
    info = sf.info(str(wav))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 48000, "PCM_16")
    audio, _ = sf.read(str(wav))
    # mean of (0.4 sine, silence) = 0.2 sine: -17 dBFS; first channel only or a sum would be -11 dBFS
    assert rms_db(audio[1000:-1000]) == pytest.approx(20 * np.log10(0.2 / np.sqrt(2)), abs=1.0)
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * 16000 / len(audio) == pytest.approx(440, abs=2)


def test_small_shortfall_zero_padded(corpus, stage1):
    audio, _ = sf.read(str(wav_path(corpus, "nearlyFull1_00001500_00004700")), dtype="int16")
    assert len(audio) == round(3.2 * 16000)
    assert not audio[-1000:].any() and audio[:1000].any()


def test_bad_clips_dropped_with_reason(corpus, stage1):
    dropped = {r["clip_id"][:11]: r["reason"] for r in read_rows(corpus / "audio" / "dropped.csv")}
    assert dropped["silentClip1"].startswith("silent")
    assert dropped["noAudioClp1"] == "no audio stream"
    assert dropped["shortAudio1"].startswith("audio too short")
    assert dropped["corruptClp1"].startswith("not a readable media file")
    assert dropped["missingClp1"].startswith("missing mp4")
    assert stage1["kept"] == 2 and stage1["dropped"] == 5
    for clip_id in dropped:
        assert not any((corpus / "audio").glob(f"{clip_id}*.wav"))


def test_clips_csv_lists_kept_clips_only(corpus, stage1):
    rows = read_rows(corpus / "audio" / "clips.csv")
    assert list(rows[0]) == ["clip_id", "youtube_id", "n_samples", "rms_db", "path"]
    assert {r["youtube_id"] for r in rows} == {"stereo44k_1", "nearlyFull1"}
    for row in rows:
        assert sf.info(str(corpus / row["path"])).frames == int(row["n_samples"])
    assert not list((corpus / "audio").glob(".*"))  # no temporary files left


def test_command_line_resumes(corpus, stage1, tmp_path):
    """The stage-1 entry point (conf + overrides, as run.sh calls it) keeps finished wavs."""
    wav = wav_path(corpus, "stereo44k_1_00010000_00013000")
    before = wav.stat().st_mtime_ns
    conf = tmp_path / "conf.yml"
    conf.write_text("corpus:\n  corpus_dir: nowhere\n  workers: 1\ndata:\n  data_dir: nowhere\n  min_rms_db: -50.0\n")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, str(REPO / "local" / "extract_audio.py"), "--conf", str(conf),
         "--corpus_dir", str(corpus), "--data_dir", str(corpus)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert json.loads(proc.stdout.splitlines()[-1])["kept"] == stage1["kept"]
    assert wav.stat().st_mtime_ns == before


def test_fit_length_rules():
    assert len(fit_clip_length(np.ones(105), 100)) == 100
    padded = fit_clip_length(np.ones(95), 100)
    assert len(padded) == 100 and padded[95:].sum() == 0
    with pytest.raises(ClipDropped, match="too short"):
        fit_clip_length(np.ones(89), 100)


@pytest.mark.parametrize("orig_rate", [8000, 14400, 17600, 44100])
def test_resample_reuses_its_kernel_with_torchaudios_exact_output(orig_rate):
    import torch
    import torchaudio.functional as AF

    audio = np.random.default_rng(0).standard_normal((2, orig_rate // 2)).astype(np.float32)
    expected = AF.resample(torch.from_numpy(audio), orig_rate, 16000).numpy()
    for _ in range(2):  # the second call takes the cached resampler
        np.testing.assert_array_equal(resample(audio, orig_rate, 16000), expected)
    np.testing.assert_array_equal(resample(audio[0], 16000, 16000), audio[0])  # same rate: unchanged
