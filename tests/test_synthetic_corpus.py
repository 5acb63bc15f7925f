"""The generated talking-face corpus: layout, determinism, resume, bad input, AV sync, face detection."""
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from asteroid_avspeech.data import layout
from asteroid_avspeech.data.synthetic import corpus as corpus_mod
from asteroid_avspeech.data.synthetic import tts
from asteroid_avspeech.data.synthetic.corpus import CorpusConfig, generate_corpus, is_done
from asteroid_avspeech.data.synthetic.noise import generate_noise
from asteroid_avspeech.data.synthetic.visemes import phone_target, viseme_track

FACES = ["astronaut", "grace_hopper"]  # ship in the scikit-image / matplotlib wheels: no download
SECONDS, SR, FPS = 2.0, 16000, 25


def _cfg(tmp: Path) -> CorpusConfig:
    return CorpusConfig(seconds=SECONDS, cache_dir=str(tmp / "cache"))


def _generate(out: Path, tmp: Path, n_speakers: int = 2, clips: int = 2, **kwargs):
    return generate_corpus(out, n_speakers, clips, seed=7, cfg=_cfg(tmp), faces=kwargs.pop("faces", FACES), **kwargs)


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("synth")
    jobs = _generate(tmp / "corpus", tmp)
    return tmp, tmp / "corpus", jobs


def test_layout_and_csv(corpus):
    _, out, jobs = corpus
    rows = [line.split(",") for line in layout.csv_path(out).read_text().splitlines()]
    assert len(rows) == len(jobs) == 4
    speakers = {r[0] for r in rows}
    assert len(speakers) == 2 and all(layout.is_youtube_id(s) for s in speakers)
    for yid in speakers:  # consecutive segments of one video per speaker
        assert sorted((float(r[1]), float(r[2])) for r in rows if r[0] == yid) == [(0.0, 2.0), (2.0, 4.0)]
    metas = []
    for yid, start, end, x, y in rows:
        assert 0.3 < float(x) < 0.7 and 0.3 < float(y) < 0.7
        clip_id = layout.make_clip_id(yid, float(start), float(end))
        wav, sr = sf.read(layout.reference_wav_path(out, clip_id), dtype="int16")
        assert sr == SR and wav.shape == (int(SECONDS * SR),) and np.abs(wav).max() > 1000
        with av.open(str(layout.clip_path(out, clip_id))) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert (video.codec_context.name, video.width, video.height) == ("h264", 256, 256)
            assert video.average_rate == FPS and (audio.codec_context.name, audio.rate) == ("aac", SR)
            assert sum(1 for _ in container.decode(video=0)) == SECONDS * FPS
        meta = json.loads(layout.meta_path(out, clip_id).read_text())
        assert meta["youtube_id"] == yid and meta["text"] and meta["phones"]
        assert len(meta["viseme_track"]) == len(meta["landmarks"]) == SECONDS * FPS
        metas.append(meta)
    # distinct face and voice per speaker
    assert len({(m["youtube_id"], m["face_id"], m["voice_id"]) for m in metas}) == 2
    assert len({m["face_id"] for m in metas}) == len({m["voice_id"] for m in metas}) == 2


def test_deterministic_in_worker_processes(corpus, tmp_path):
    tmp, out, jobs = corpus
    again = _generate(tmp_path / "again", tmp, n_speakers=2, clips=1, workers=2)
    assert len(again) == 2 and {job.clip_id for job in again} <= {job.clip_id for job in jobs}
    for job in again:
        for path_of in (layout.reference_wav_path, layout.meta_path):
            assert path_of(tmp_path / "again", job.clip_id).read_bytes() == path_of(out, job.clip_id).read_bytes()


def test_resume_regenerates_only_missing_clip(corpus, tmp_path):
    tmp, out, jobs = corpus
    work = tmp_path / "corpus"
    shutil.copytree(out, work)
    victim = jobs[1].clip_id
    wav_before = layout.reference_wav_path(work, victim).read_bytes()
    layout.clip_path(work, victim).unlink()
    assert not is_done(work, victim)
    stamps = {j.clip_id: layout.meta_path(work, j.clip_id).stat().st_mtime_ns for j in jobs}
    _generate(work, tmp)
    assert is_done(work, victim) and layout.reference_wav_path(work, victim).read_bytes() == wav_before
    for job in jobs:
        changed = layout.meta_path(work, job.clip_id).stat().st_mtime_ns != stamps[job.clip_id]
        assert changed == (job.clip_id == victim)


def test_bad_input(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="Unknown voice"):
        _generate(tmp_path / "a", tmp_path, voices=["en-us+m1", "klingon+m9"])
    with pytest.raises(ValueError, match="Unknown face"):
        _generate(tmp_path / "a", tmp_path, faces=["astronaut", "nobody"])
    with pytest.raises(ValueError, match="lower --n-speakers"):
        _generate(tmp_path / "a", tmp_path, n_speakers=3)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RuntimeError, match="not writable"):
        _generate(blocker / "corpus", tmp_path)
    monkeypatch.setattr(tts.ctypes.util, "find_library", lambda name: "libespeak-ng-missing.so.9")
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        tts.Espeak()


def test_disk_error_leaves_no_partial_clip(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(corpus_mod, "write_mp4", full_disk)
    with pytest.raises(RuntimeError, match="free disk space"):
        _generate(tmp_path / "c", tmp_path, n_speakers=1, clips=1)
    leftovers = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
    assert leftovers == []


def test_visemes():
    assert phone_target("m") == phone_target("b") == (0.0, 1.0)
    assert phone_target("a:")[0] == 1.0 and phone_target("_:")[0] < 0.05
    track = viseme_track([(0.0, 0.2, "m"), (0.2, 0.6, "A:"), (0.6, 1.0, "p")], 25, sigma_frames=0)
    assert track.shape == (25, 2)
    assert track[2, 0] == 0.0 and track[10, 0] == 1.0 and track[20, 0] == 0.0


def _mouth_darkness(frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Fraction of dark pixels in a box around the mouth, per frame (the box follows the head)."""
    out = []
    for frame, points in zip(frames, landmarks):
        centre, width = (points[3] + points[4]) / 2, np.linalg.norm(points[4] - points[3])
        x0, x1 = int(centre[0] - 0.6 * width), int(centre[0] + 0.6 * width)
        y0, y1 = int(centre[1] - 0.3 * width), int(centre[1] + 0.6 * width)
        luma = frame[y0:y1, x0:x1].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        out.append((luma < 60).mean())
    return np.array(out)


def test_av_sync(corpus):
    _, out, jobs = corpus
    hop, lags = SR // FPS, np.arange(-5, 6)
    scores = np.zeros(len(lags))
    for job in jobs:
        meta = json.loads(layout.meta_path(out, job.clip_id).read_text())
        frames = _decode(layout.clip_path(out, job.clip_id))
        darkness = _mouth_darkness(frames, np.array(meta["landmarks"]))
        openness = np.array(meta["viseme_track"])[:, 0]
        assert np.corrcoef(darkness, openness)[0, 1] > 0.9
        wav, _ = sf.read(layout.reference_wav_path(out, job.clip_id))
        log_energy = np.log10((wav[: len(frames) * hop].reshape(len(frames), hop) ** 2).mean(1) + 1e-6)
        scores += [np.corrcoef(np.roll(log_energy, lag)[5:-5], darkness[5:-5])[0, 1] for lag in lags]
    assert abs(lags[int(np.argmax(scores))]) <= 1, scores


def test_mtcnn_finds_one_face(corpus):
    facenet = pytest.importorskip("facenet_pytorch")
    _, out, jobs = corpus
    detector = facenet.MTCNN(keep_all=True, device="cpu")
    for job in jobs[::2]:
        frames = _decode(layout.clip_path(out, job.clip_id))[::20]
        boxes, probs = detector.detect(list(frames))
        assert all(b is not None and len(b) == 1 for b in boxes)


def test_noise(tmp_path):
    csv_file = generate_noise(tmp_path, files_per_kind=1, seconds=1.0, kinds=["pink", "hum", "babble"])
    rows = csv_file.read_text().splitlines()
    assert rows[0] == "file,kind,seconds" and len(rows) == 4
    for row in rows[1:]:
        wav, sr = sf.read(tmp_path / row.split(",")[0], dtype="int16")
        assert sr == SR and wav.shape == (SR,) and wav.std() > 100
