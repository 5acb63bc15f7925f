"""Decoding, face tracking, crops and embeddings on small generated videos."""
import logging
from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from facenet_pytorch import InceptionResnetV1

from asteroid_avspeech.video.benchmark import benchmark_tracking
from asteroid_avspeech.video.crops import (
    FACE_SIZE,
    LEFT_EYE,
    RIGHT_EYE,
    face_crops,
    lip_crops,
    lip_transform,
    mouth_centre,
    standardize_faces,
)
from asteroid_avspeech.video.decode import (
    VideoReadError,
    iter_frame_chunks,
    read_audio,
    read_clip,
    read_frames,
)
from asteroid_avspeech.video.embeddings import FaceEmbedder, load_face_embedder
from asteroid_avspeech.video.faces import Detections, FaceDetector, FaceTracker
from video_fixtures import (  # noqa: F401  (pytest fixtures)
    clip_30fps,
    face_clip,
    face_detector,
    half_face_clip,
    moving_face,
    noise_clip,
    noise_frames,
    silent_clip,
    spaced_clip,
    stereo_44k_clip,
    truncated_clip,
    two_face_clip,
    two_faces,
    video_dir,
)


# ---------------------------------------------------------------- decoding
def test_read_clip_shapes_and_exact_length(face_clip):
    clip = read_clip(face_clip, duration=1.0)
    assert clip.frames.shape == (25, 256, 256, 3) and clip.frames.dtype == np.uint8
    assert clip.audio.shape == (16000,) and clip.audio.dtype == np.float32
    assert 0.2 < np.abs(clip.audio).max() < 0.4  # the 0.3 tone
    padded = read_audio(face_clip, n_samples=17000)
    assert padded.shape == (17000,) and np.all(padded[16400:] == 0)


def test_chunks_are_bounded_and_match_full_read(face_clip):
    chunks = list(iter_frame_chunks(face_clip, chunk_frames=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    np.testing.assert_array_equal(np.concatenate(chunks), read_frames(face_clip))


def test_30fps_is_retimed_to_25_by_nearest_frame(clip_30fps, caplog):
    with av.open(str(clip_30fps)) as container:
        raw = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert len(raw) == 30
    with caplog.at_level(logging.INFO):
        frames = read_frames(clip_30fps, fps=25)
    assert "re-timed" in caplog.text
    assert len(frames) == 25
    nearest = np.round(np.arange(25) * 30 / 25).astype(int)
    np.testing.assert_array_equal(frames, raw[nearest])


def test_stereo_44k_is_resampled_to_16k_mono(stereo_44k_clip, caplog):
    with caplog.at_level(logging.INFO):
        audio = read_audio(stereo_44k_clip, sample_rate=16000, n_samples=6400)
    assert "from 2 channel(s) to mono and resampled from 44100 Hz to 16000 Hz" in caplog.text
    assert audio.shape == (6400,) and audio.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(audio[1000:5000]))
    assert abs(np.argmax(spectrum) * 16000 / 4000 - 220) < 10  # the 220 Hz tone survives


def test_path_with_spaces(spaced_clip):
    assert " " in str(spaced_clip)
    assert read_clip(spaced_clip).frames.shape == (10, 256, 256, 3)


@pytest.mark.parametrize("reader", [read_frames, read_audio])
def test_truncated_and_missing_files_raise_clear_errors(truncated_clip, tmp_path, reader):
    with pytest.raises(VideoReadError, match="truncated.mp4"):
        reader(truncated_clip)
    with pytest.raises(VideoReadError, match="does not exist"):
        reader(tmp_path / "nothing.mp4")


def test_missing_streams_raise_clear_errors(silent_clip, tmp_path):
    assert read_frames(silent_clip).shape[0] == 10  # video alone is fine
    with pytest.raises(VideoReadError, match="no audio stream"):
        read_audio(silent_clip)
    wav = tmp_path / "audio only.wav"
    sf.write(wav, np.zeros(1600, np.float32), 16000)
    with pytest.raises(VideoReadError, match="no video stream"):
        read_frames(wav)


def test_nan_in_a_float_soundtrack_is_refused_with_its_time(tmp_path):
    """A float PCM soundtrack (mkv) with a NaN at 0.2 s: refused, not turned into NaN outputs."""
    path = tmp_path / "nan.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("pcm_f32le", rate=16000, layout="mono")
        for _ in range(10):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")))
        container.mux(video.encode())
        samples = np.full((1, 6400), 0.1, np.float32)
        samples[0, 3200] = np.nan
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
        container.mux(sound.encode(frame))
        container.mux(sound.encode())
    with pytest.raises(VideoReadError, match=r"nan.mkv: NaN or infinite audio sample at 0.20 s"):
        read_audio(path)


# ---------------------------------------------------------------- tracking
def test_tracking_matches_every_frame_detection(face_clip, face_detector):
    frames = read_frames(face_clip)
    [tracked] = FaceTracker(detect_every=12, detector=face_detector).track_all(frames)
    [every] = FaceTracker(detect_every=1, detector=face_detector).track_all(frames)
    assert tracked.mask.all() and every.mask.all()
    error = np.linalg.norm(mouth_centre(tracked.landmarks) - mouth_centre(every.landmarks), axis=1)
    assert error.mean() < 2.0, error
    # the face really moves, so this is not a static-image tautology
    assert np.ptp(mouth_centre(every.landmarks)[:, 0]) > 30


def test_channels_last_detector_finds_the_same_faces(face_clip, face_detector):
    frames = read_frames(face_clip)[::6]
    assert next(face_detector.mtcnn.parameters()).is_contiguous(memory_format=torch.channels_last)
    found = face_detector(frames)
    default = FaceDetector(channels_last=False)(frames)
    assert all(len(d.boxes) == 1 for d in found)
    for a, b in zip(found, default):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-2)


def test_streaming_tracking_equals_in_memory(face_clip, face_detector):
    tracker = FaceTracker(detect_every=12, detector=face_detector)
    [whole] = tracker.track_all(read_frames(face_clip))
    [streamed] = tracker.track_all(iter_frame_chunks(face_clip, chunk_frames=7))
    np.testing.assert_allclose(streamed.landmarks, whole.landmarks, atol=1e-3)
    np.testing.assert_array_equal(streamed.mask, whole.mask)


def test_hint_selects_the_face(face_detector, caplog):
    frames = two_faces(13)
    tracker = FaceTracker(detect_every=12, detector=face_detector)
    tracks = tracker.track_all(frames)
    assert len(tracks) == 2
    assert tracks[0].first_centre()[0] < 256 < tracks[1].first_centre()[0]  # left to right
    assert tracker.track_hinted(frames, (0.25, 0.5)).first_centre()[0] < 256
    assert tracker.track_hinted(frames, (0.75, 0.5)).first_centre()[0] > 256
    with caplog.at_level(logging.INFO):
        between = tracker.track_hinted(frames, (0.45, 0.5))  # nearer the left face
    assert between.first_centre()[0] < 256
    assert "lies in no face box" in caplog.text


def test_missing_and_late_faces(face_detector):
    tracker = FaceTracker(detect_every=12, detector=face_detector)
    assert tracker.track_all(noise_frames(13)) == []
    leaves = np.concatenate([moving_face(10), noise_frames(15)])
    [track] = tracker.track_all(leaves)
    assert track.mask[0] and not track.mask[12:].any()
    assert np.all(track.landmarks[~track.mask] == 0)
    arrives = np.concatenate([noise_frames(12), moving_face(13)])
    [late] = tracker.track_all(arrives)
    assert late.first_frame == 12 and late.mask[12:].all() and not late.mask[:12].any()


class ScriptedDetector:
    """Stands in for MTCNN: returns one scripted box per keyframe (None = no face)."""

    def __init__(self, boxes):
        self.boxes = list(boxes)

    def __call__(self, frames):
        out = []
        for _ in frames:
            box = self.boxes.pop(0)
            if box is None:
                out.append(Detections.empty())
                continue
            box = np.array(box, np.float32)
            landmarks = np.tile((box[:2] + box[2:]) / 2, (1, 5, 1))
            out.append(Detections(box[None], np.ones(1, np.float32), landmarks))
        return out


def test_gap_and_glitch_handling_on_scripted_detections():
    frames = np.zeros((41, 8, 8, 3), np.uint8)  # keyframes 0, 10, 20, 30, 40
    moving = [[10.0 * i, 10, 10.0 * i + 50, 60] for i in range(5)]
    with_gap = moving[:2] + [None] + moving[3:]
    [track] = FaceTracker(detect_every=10, detector=ScriptedDetector(with_gap)).track_all(frames)
    assert track.mask[:11].all() and not track.mask[11:30].any() and track.mask[30:].all()
    np.testing.assert_allclose(track.boxes[5], [5, 10, 55, 60])  # linear between keyframes
    glitch = moving[:2] + [[0, 0, 100, 100]] + moving[3:]  # box twice too big on one keyframe
    [track] = FaceTracker(detect_every=10, detector=ScriptedDetector(glitch)).track_all(frames)
    assert track.mask.all()
    np.testing.assert_allclose(track.boxes[20], moving[2])
    np.testing.assert_allclose(track.boxes[15], [15, 10, 65, 60])


def test_benchmark_tracking(face_clip, face_detector):
    detected = []

    def counting_detector(frames):
        detected.append(len(frames))
        return face_detector(frames)

    result = benchmark_tracking([(face_clip, (0.5, 0.5))], detect_every=12, detector=counting_detector)
    assert result.n_frames == 25
    assert result.mouth_error_mean_px < 2.0
    assert result.face_ratio_tracked == result.face_ratio_every_frame == 1.0
    assert result.seconds_tracked > 0 and result.seconds_every_frame > 0
    # the work saved, independent of a busy test machine: warm-up + tracked run 3 frames each
    # (keyframes 0, 12, 24), every-frame run 25
    assert sum(detected) == 3 + 3 + 25


# ---------------------------------------------------------------- crops
def test_lip_transform_levels_eyes_and_centres_mouth():
    landmarks = np.array([[100, 100], [140, 120], [120, 130], [105, 150], [135, 165]], np.float32)
    matrix = lip_transform(landmarks, size=64)
    mapped = landmarks @ matrix[:, :2].T + matrix[:, 2]
    assert abs(mapped[LEFT_EYE, 1] - mapped[RIGHT_EYE, 1]) < 1e-3
    np.testing.assert_allclose(mouth_centre(mapped), [32, 32], atol=1e-3)


def test_lip_and_face_crops(face_clip, face_detector):
    frames = read_frames(face_clip)[:4]
    [track] = FaceTracker(detect_every=3, detector=face_detector).track_all(frames)
    mask = track.mask.copy()
    mask[2] = False
    lips = lip_crops(frames, track.landmarks, mask, size=48)
    assert lips.shape == (4, 48, 48) and lips.dtype == np.uint8
    assert np.all(lips[2] == 0) and lips[0].std() > 10
    faces = face_crops(frames, track.boxes, mask)
    assert faces.shape == (4, FACE_SIZE, FACE_SIZE, 3) and faces.dtype == np.uint8
    assert np.all(faces[2] == 0) and faces[0].std() > 10
    x = standardize_faces(faces)
    assert x.shape == (4, 3, FACE_SIZE, FACE_SIZE)
    assert torch.allclose(x[2], torch.full_like(x[2], -127.5 / 128))
    assert x.min() >= -1 and x.max() < 1


def test_embeddings_from_local_weights_only(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        assert load_face_embedder(None) is None
        assert load_face_embedder(tmp_path / "missing.pt") is None
    assert "face embeddings skipped" in caplog.text
    torch.manual_seed(0)
    state = InceptionResnetV1(pretrained=None, classify=False).state_dict()
    state["logits.weight"] = torch.zeros(3, 512)  # a VGGFace2 checkpoint carries a classifier
    state["logits.bias"] = torch.zeros(3)
    weights = tmp_path / "facenet.pt"
    torch.save(state, weights)
    embedder = load_face_embedder(weights)
    assert isinstance(embedder, FaceEmbedder)
    faces = np.random.default_rng(0).integers(0, 256, (2, FACE_SIZE, FACE_SIZE, 3), dtype=np.uint8)
    out = embedder(faces)
    assert out.shape == (2, 512) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
