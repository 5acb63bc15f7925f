"""Video in -> one separated track per face out, for any length, on CPU or GPU.

Pipeline (memory bounded by one chunk, whatever the length of the file):

1. Track every face through the clip (:meth:`FaceTracker.track_all`, streamed over
   :func:`iter_frame_chunks`): faces are numbered in order of first appearance, then left to
   right. A track holds a few numbers per frame (box, landmarks), never the frames.
2. Second pass: the audio (mono, the model's sample rate) and the visual input of every face
   (the lip crops of stage 2, :func:`crop_tracks` with the training ``lip_size``/``lip_scale``,
   or FaceNet embeddings) are decoded block by block.
3. The model runs on windows of ``chunk_seconds`` that overlap by ``overlap_seconds`` (starts on
   video frame boundaries); the windows are blended with a triangular cross-fade (as
   ``demucs.apply``), and finished samples are handed on at once.
4. Output ``k`` of the model is the voice of the face in visual slot ``k``. With more faces than
   ``model.n_src`` the model runs once per group of ``n_src`` faces; the last group is completed
   with faces of earlier groups rather than with zeros (training hides all faces of an item or
   none, so a half-empty input is outside what the model saw), and a face's track is taken from
   the first group where it was wanted.
5. A face's track is zero before the face first appears and after it leaves (short ramps);
   within its span, frames where the face is lost stay at the model's estimate (the visual is
   then zeros, the paper's missing-face rule).

:func:`separate_video` returns the tracks in memory; :func:`write_video_separation` streams them
into ``<name>_est<k>.wav`` files plus a sidecar ``<name>_faces.json`` (and, with ``remux``, one
``<name>_est<k>.mp4`` per face), written atomically: on any error nothing is left behind.

``model.separate("clip.mp4")`` and ``asteroid-infer MODEL --files clip.mp4`` reach this module
through :mod:`asteroid_avspeech.file_routing`.
"""
import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import av
import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from .audio import fit_length
from .io_utils import atomic_path
from .models.fast_inference import inference_context, resolve_precision
from .streaming import BlockWindow, ChunkSettings, iter_blended_windows
from .data.visual_features import VisualConfig
from .video.crops import crop_tracks
from .video.decode import duration_seconds, iter_audio_blocks, iter_frame_chunks, video_size
from .video.embeddings import FaceEmbedder, load_face_embedder
from .video.faces import FaceDetector, FaceTrack, FaceTracker, select_track

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

#: Length of the fade in and out of a face's track where the face appears or leaves (s).
PRESENCE_RAMP_SECONDS = 0.02
#: Sample span bound of a face present from the first (or until the last) frame.
UNBOUNDED = 2 ** 62


@dataclass
class FaceSeparation:
    """One face of a video and its separated voice.

    Attributes:
        index: 1-based face number (order of first appearance, then left to right).
        mask: ``(frames,)`` bool, True where the face is detected or tracked.
        boxes: ``(frames, 4)`` float32 ``x1, y1, x2, y2`` pixels (zeros where absent).
        audio: ``(time,)`` float32 at the model's sample rate (None when streamed to a file).
        output: the wav file written for this face (None when kept in memory).
        video_output: the remuxed mp4 of this face (None unless ``remux``).
    """

    index: int
    mask: np.ndarray = field(repr=False)
    boxes: np.ndarray = field(repr=False)
    audio: Optional[np.ndarray] = field(default=None, repr=False)
    output: Optional[Path] = None
    video_output: Optional[Path] = None

    @property
    def first_frame(self) -> int:
        return int(np.argmax(self.mask))

    @property
    def last_frame(self) -> int:
        return _last_frame(self.mask)

    def to_json(self, fps: float) -> Dict[str, object]:
        """Sidecar entry: span, output files, and the box of every frame where the face is."""
        frames = np.flatnonzero(self.mask)
        return dict(
            face=self.index,
            output=self.output.name if self.output else None,
            video_output=self.video_output.name if self.video_output else None,
            first_frame=self.first_frame,
            last_frame=self.last_frame,
            start_seconds=round(self.first_frame / fps, 3),
            end_seconds=round((self.last_frame + 1) / fps, 3),
            frames=frames.tolist(),
            boxes=np.round(self.boxes[frames], 1).tolist(),
        )


# --------------------------------------------------------------------------- face tracking
def visual_config_for(model, **overrides) -> VisualConfig:
    """Stage-2 settings that make the crops ``model`` was trained on (its ``fps``, ``lip_size``
    and ``lip_scale``), then ``overrides`` (``None`` values are ignored)."""
    values = dict(fps=float(model.fps), lip_size=model.lip_size, lip_scale=model.lip_scale)
    values.update({key: value for key, value in overrides.items() if value is not None})
    return VisualConfig(**values)


def track_faces(path: PathLike, config: VisualConfig, frame_chunk: int = 250,
                progress: bool = True) -> List[FaceTrack]:
    """Every face of ``path``, ordered by first appearance then left to right (one pass, streamed).

    Raises:
        VideoReadError: unreadable file or no video stream.
        ValueError: no face in the whole video (the message names the file and the fix).
    """
    path = Path(path)
    tracker = FaceTracker(config.detect_every, FaceDetector(device=config.device))
    chunks = _progress(iter_frame_chunks(path, config.fps, frame_chunk), progress,
                       f"tracking faces in {path.name}", duration_seconds(path), 1 / config.fps)
    tracks = tracker.track_all(chunks)
    if not tracks:
        raise ValueError(
            f"{path}: no face found in the video, so there is no face to separate. "
            "For audio-only separation, extract the soundtrack to a wav and run "
            "`asteroid-infer MODEL --files sound.wav` (voices then come in arbitrary order)."
        )
    return tracks


def choose_faces(tracks: Sequence[FaceTrack], face: Optional[int] = None,
                 point: Optional[Tuple[float, float]] = None,
                 frame_size: Optional[Tuple[int, int]] = None) -> List[int]:
    """0-based indices of the faces to separate: all, face number ``face`` (1-based), or the
    face at ``point`` (``x, y`` as fractions of the frame width and height, judged where each
    face first appears; ``frame_size`` is ``(width, height)`` in pixels).

    Raises:
        ValueError: both selections given, ``face`` out of range, or ``point`` outside [0, 1].
    """
    if face is not None and point is not None:
        raise ValueError("Choose a face by number (--face) or by position (--point), not both.")
    if face is not None:
        if not 1 <= face <= len(tracks):
            raise ValueError(f"--face {face}: the video has {len(tracks)} face(s), numbered 1 to {len(tracks)}.")
        return [face - 1]
    if point is not None:
        if not all(0.0 <= v <= 1.0 for v in point):
            raise ValueError(f"--point {point}: x and y are fractions of the width and height, in [0, 1].")
        chosen = select_track(tracks, point, frame_size)
        return [next(i for i, t in enumerate(tracks) if t is chosen)]
    return list(range(len(tracks)))


def face_groups(n_faces: int, n_src: int, wanted: Sequence[int]) -> List[List[int]]:
    """Visual slots of each model run: ``n_src`` face indices per run, -1 for an empty slot.

    The wanted faces are taken ``n_src`` at a time; a run with free slots is completed with the
    other faces, then with wanted faces of earlier runs, and only then left empty (-1).
    """
    groups = []
    todo = list(wanted)
    fillers = [f for f in range(n_faces) if f not in wanted] + list(wanted)
    while todo:
        group, todo = todo[:n_src], todo[n_src:]
        group += [f for f in fillers if f not in group][: n_src - len(group)]
        groups.append(group + [-1] * (n_src - len(group)))
    return groups


# ----------------------------------------------------------------------------- streaming
def iter_visual_blocks(path: PathLike, tracks: Sequence[FaceTrack], config: VisualConfig,
                       kind: str, embedder: Optional[FaceEmbedder] = None,
                       frame_chunk: int = 250) -> Iterator[np.ndarray]:
    """Visual input of every face, one block of frames at a time, made as in stage 2.

    Yields:
        ``(chunk, n_faces, S, S)`` uint8 lip crops (``kind="lips"``) or ``(chunk, n_faces, 512)``
        float32 embeddings (``kind="embeddings"``); zeros where a face is absent.
    """
    if kind == "embeddings" and embedder is None:
        raise ValueError("This model takes FaceNet embeddings: pass facenet_weights (the "
                         "InceptionResnetV1 VGGFace2 state_dict used to prepare its training data).")
    start = 0
    for chunk in iter_frame_chunks(path, config.fps, frame_chunk):
        stop = start + len(chunk)
        parts = [_slice_track(t, start, stop) for t in tracks]
        crops = crop_tracks([chunk], parts, config.lip_size, config.lip_scale, kind == "embeddings")
        if kind == "lips":
            yield np.stack([lips for lips, _ in crops], axis=1)
        else:
            block = np.zeros((len(chunk), len(tracks), _embedding_dim(embedder)), np.float32)
            for t, (_, faces) in enumerate(crops):
                present = np.flatnonzero(parts[t].mask)
                if len(present):
                    block[present, t] = embedder(faces[present])
            yield block
        start = stop


def _embedding_dim(embedder: FaceEmbedder) -> int:
    return int(embedder.model.last_bn.num_features)


def _slice_track(track: FaceTrack, start: int, stop: int) -> FaceTrack:
    """Frames ``[start, stop)`` of a track (absent beyond its end)."""
    n = stop - start
    return FaceTrack(boxes=fit_length(track.boxes[start:stop], n),
                     landmarks=fit_length(track.landmarks[start:stop], n),
                     mask=fit_length(track.mask[start:stop], n))


def presence_gain(spans: np.ndarray, start: int, stop: int, ramp: int) -> np.ndarray:
    """Gain ``(n_faces, stop - start)``: 1 inside each face's sample span ``spans[k] = (a, b)``,
    0 outside, with linear ramps of ``ramp`` samples just inside the span."""
    t = np.arange(start, stop, dtype=np.float64)[None]
    rise = (t - spans[:, :1] + 1) / max(ramp, 1)
    fall = (spans[:, 1:] - t) / max(ramp, 1)
    return np.clip(np.minimum(rise, fall), 0.0, 1.0).astype(np.float32)


def iter_separation(
    model: torch.nn.Module,
    audio_blocks: Iterator[np.ndarray],
    visual_blocks: Iterator[np.ndarray],
    wanted: Sequence[int],
    spans: np.ndarray,
    chunks: ChunkSettings = ChunkSettings(),
    device: Optional[Union[str, torch.device]] = None,
) -> Iterator[Tuple[int, np.ndarray]]:
    """Separate a stream, window by window; yield each finished piece as soon as it is final.

    Args:
        model: a :class:`~asteroid_avspeech.models.LookingToListen` (``forward_wav``, ``n_src``,
            ``fps``, ``sample_rate``).
        audio_blocks: mono float32 blocks ``(n,)`` at ``model.sample_rate``.
        visual_blocks: blocks ``(frames, n_faces, ...)`` at ``model.fps`` (see
            :func:`iter_visual_blocks`).
        wanted: 0-based indices of the faces to separate (runs: :func:`face_groups`).
        spans: ``(n_faces, 2)`` sample span ``[first, last)`` of every face (zeros outside).
        chunks: window and overlap.
        device: where the model runs (default: where its parameters are).

    Yields:
        ``(start_sample, pieces)``: ``pieces`` is ``(n_wanted, n)`` float32 for the samples
        ``[start_sample, start_sample + n)``, one row per wanted face; the pieces tile the
        whole audio.

    Raises:
        ValueError: no audio at all.
    """
    device = device or next(model.parameters()).device
    rate, fps = float(model.sample_rate), float(model.fps)
    wanted = list(wanted)
    groups = face_groups(len(spans), model.n_src, wanted)
    window, hop = chunks.window_hop(fps)
    to_sample = lambda frame: round(frame * rate / fps)  # noqa: E731
    ramp = round(PRESENCE_RAMP_SECONDS * rate)
    visual = BlockWindow(visual_blocks)

    def separate(frame: int, wav: np.ndarray) -> np.ndarray:
        n_frames = max(1, round(len(wav) / rate * fps))
        visual.release(frame)
        vis = fit_length(visual.get(frame, frame + n_frames), n_frames)
        return _run_groups(model, wav, vis, groups, wanted, spans - to_sample(frame), device)

    separated = False
    for start, out in iter_blended_windows(BlockWindow(audio_blocks), len(wanted), window, hop, separate, to_sample):
        separated = True
        yield start, out * presence_gain(spans[wanted], start, start + out.shape[1], ramp)
    if not separated:
        raise ValueError("no audio sample to separate")


def _run_groups(model: torch.nn.Module, wav: np.ndarray, vis: np.ndarray, groups: Sequence[Sequence[int]],
                wanted: Sequence[int], spans: np.ndarray, device) -> np.ndarray:
    """One window: ``wav`` ``(n,)``, ``vis`` ``(frames, n_faces, ...)``, spans relative to the
    window -> estimates ``(n_wanted, n)``. Runs whose wanted faces are all absent are skipped."""
    n = len(wav)
    est = np.zeros((len(wanted), n), np.float32)
    todo = set(wanted)
    wav_t = torch.from_numpy(np.ascontiguousarray(wav))[None].to(device)
    for group in groups:
        heads = [(slot, f) for slot, f in enumerate(group) if f in todo]
        todo -= {f for _, f in heads}
        if not any(spans[f, 0] < n and spans[f, 1] > 0 for _, f in heads):
            continue
        visual = np.zeros((len(group),) + vis.shape[:1] + vis.shape[2:], vis.dtype)
        for slot, f in enumerate(group):
            if f >= 0:
                visual[slot] = vis[:, f]
        out = model.forward_wav(wav_t, torch.from_numpy(visual)[None].to(device))[0].cpu().numpy()
        for slot, f in heads:
            est[wanted.index(f)] = out[slot]
    return est


# ---------------------------------------------------------------------------- front ends
@dataclass
class _Plan:
    """What a video separation works on: its faces, the chosen ones, their sample spans."""

    path: Path
    tracks: List[FaceTrack]
    wanted: List[int]
    spans: np.ndarray
    config: VisualConfig
    device: torch.device
    precision: str


def usable_device(name: Union[str, torch.device]) -> torch.device:
    """``torch.device(name)``, refused with a ValueError if unknown or a GPU that torch cannot see
    (rather than failing in the face detector's first CUDA call)."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"device {name!r}: {err}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: torch sees no GPU (check the driver with nvidia-smi); use cpu.")
    return device


def _plan(model, path: PathLike, face: Optional[int], point: Optional[Tuple[float, float]],
          visual_config: Optional[VisualConfig], chunks: ChunkSettings,
          device: Optional[Union[str, torch.device]], precision: str, progress: bool) -> _Plan:
    path = Path(path)
    device = usable_device(device) if device is not None else next(model.parameters()).device
    precision = resolve_precision(precision, device)  # before tracking: fp16 on CPU fails here
    model.to(device)
    config = visual_config or visual_config_for(model)
    if abs(config.fps - float(model.fps)) > 1e-6:
        raise ValueError(f"visual_config.fps={config.fps} differs from the model's fps={model.fps}.")
    config = VisualConfig(**{**config.__dict__, "device": str(device)})
    chunks.window_hop(config.fps)  # validates the chunk settings before any decoding
    size = video_size(path)  # a clear error for a file without video before tracking starts
    tracks = track_faces(path, config, chunks.frame_chunk, progress)
    wanted = choose_faces(tracks, face, point, size)
    spans = np.array([face_span(t.mask, float(model.sample_rate) / config.fps) for t in tracks])
    logger.info("%s: %d face(s) found; separating face(s) %s", path, len(tracks),
                ", ".join(str(i + 1) for i in wanted))
    return _Plan(path, tracks, wanted, spans, config, device, precision)


def face_span(mask: np.ndarray, samples_per_frame: float) -> Tuple[int, int]:
    """Samples ``[first, last)`` where a face of presence ``mask`` ``(frames,)`` is in the video.

    A face there in the first (last) frame has no start (end): it is not faded at the clip's
    edges, and keeps the samples the soundtrack has beyond the last frame (codec padding).
    """
    first, last = int(np.argmax(mask)), _last_frame(mask)
    start = round(first * samples_per_frame) if first > 0 else -UNBOUNDED
    stop = round((last + 1) * samples_per_frame) if last < len(mask) - 1 else UNBOUNDED
    return start, stop


def _last_frame(mask: np.ndarray) -> int:
    """Index of the last True of ``mask`` ``(frames,)``."""
    return int(len(mask) - 1 - np.argmax(mask[::-1]))


def _stream(model, plan: _Plan, chunks: ChunkSettings, progress: bool) -> Iterator[Tuple[int, np.ndarray]]:
    """The separated pieces of ``plan`` (see :func:`iter_separation`), with a progress bar in seconds.

    The model runs in :func:`~asteroid_avspeech.models.fast_inference.inference_context` at
    ``plan.precision`` (bf16 mask network where the hardware has it: see the README's Performance).
    """
    kind = model.sizes["visual_kind"]
    embedder = load_face_embedder(plan.config.facenet_weights, plan.device) if kind == "embeddings" else None
    audio = iter_audio_blocks(plan.path, int(model.sample_rate))
    visual = iter_visual_blocks(plan.path, plan.tracks, plan.config, kind, embedder, chunks.frame_chunk)
    pieces = iter_separation(model, audio, visual, plan.wanted, plan.spans, chunks, plan.device)
    bar = tqdm(total=duration_seconds(plan.path), unit="s", disable=not progress,
               desc=f"separating {plan.path.name}", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]")
    try:
        with inference_context(model, plan.precision):
            for start, piece in pieces:
                _advance(bar, piece.shape[1] / float(model.sample_rate))
                yield start, piece
    finally:
        bar.close()


def separate_video(
    model: torch.nn.Module,
    path: PathLike,
    face: Optional[int] = None,
    point: Optional[Tuple[float, float]] = None,
    visual_config: Optional[VisualConfig] = None,
    chunks: ChunkSettings = ChunkSettings(),
    device: Optional[Union[str, torch.device]] = None,
    precision: str = "auto",
    progress: bool = True,
) -> List[FaceSeparation]:
    """Separate the voice of every face of a video (or of one chosen face), in memory.

    Args:
        model: a loaded :class:`~asteroid_avspeech.models.LookingToListen` (any mode: it runs
            in eval mode without gradients).
        path: video with a soundtrack (any container and codecs FFmpeg reads).
        face: separate only face number ``face`` (1-based, in face order).
        point: separate only the face at ``(x, y)`` (fractions of the frame width and height).
        visual_config: crop settings; they must be those of the model's training data
            (``lip_size``, ``lip_scale``, ``detect_every``, ``facenet_weights``).
        chunks: window / overlap of the model runs.
        device: device of the model and the face detector (default: the model's).
        precision: ``"auto"`` (bf16 where the device has it natively, else fp32), ``"fp32"``,
            ``"bf16"`` or ``"fp16"`` (CUDA) for the mask network.
        progress: show tqdm bars (seconds of video).

    Returns:
        One :class:`FaceSeparation` per face (all faces; ``audio`` is None for faces not chosen),
        ``audio`` ``(time,)`` at ``model.sample_rate`` with the length of the soundtrack.

    Raises:
        VideoReadError: unreadable file, no video or no audio stream (names the file).
        ValueError: no face in the video, bad selection or settings.
    """
    plan = _plan(model, path, face, point, visual_config, chunks, device, precision, progress)
    parts = [piece for _, piece in _stream(model, plan, chunks, progress)]
    audio = np.concatenate(parts, axis=1)
    results = _results(plan)
    for row, f in enumerate(plan.wanted):
        results[f].audio = audio[row]
    return results


def _results(plan: _Plan) -> List[FaceSeparation]:
    return [FaceSeparation(index=i + 1, mask=t.mask, boxes=t.boxes) for i, t in enumerate(plan.tracks)]


def output_paths(path: PathLike, output_dir: Optional[PathLike], n_faces: int) -> Dict[str, Path]:
    """Names of the outputs of ``path``: ``<stem>_est<k>.wav`` (as asteroid), ``<stem>_est<k>.mp4``,
    ``<stem>_faces.json``, in ``output_dir`` (default: next to the video)."""
    path = Path(path)
    base = Path(output_dir if output_dir is not None else path.parent) / path.stem
    names = {f"wav{k}": Path(f"{base}_est{k}.wav") for k in range(1, n_faces + 1)}
    names.update({f"mp4{k}": Path(f"{base}_est{k}.mp4") for k in range(1, n_faces + 1)})
    names["json"] = Path(f"{base}_faces.json")
    return names


def write_video_separation(
    model: torch.nn.Module,
    path: PathLike,
    output_dir: Optional[PathLike] = None,
    face: Optional[int] = None,
    point: Optional[Tuple[float, float]] = None,
    remux: bool = False,
    visual_config: Optional[VisualConfig] = None,
    chunks: ChunkSettings = ChunkSettings(),
    device: Optional[Union[str, torch.device]] = None,
    precision: str = "auto",
    force_overwrite: bool = False,
    progress: bool = True,
) -> List[FaceSeparation]:
    """Like :func:`separate_video`, but streams each face's voice to ``<stem>_est<k>.wav`` (16-bit,
    ``model.sample_rate``) with bounded memory, writes the sidecar ``<stem>_faces.json`` (video,
    settings, every face's frames, boxes and output files) and, with ``remux``, one
    ``<stem>_est<k>.mp4`` per face (the video with that voice as soundtrack).

    All files are written under temporary names and renamed at the very end: after an error
    (unreadable file, no face, interruption) no output is left behind.

    Raises:
        FileExistsError: an output exists and ``force_overwrite`` is False.
        VideoReadError, ValueError: see :func:`separate_video`.
    """
    plan = _plan(model, path, face, point, visual_config, chunks, device, precision, progress)
    names = output_paths(plan.path, output_dir, len(plan.tracks))
    keys = [f"wav{f + 1}" for f in plan.wanted] + [f"mp4{f + 1}" for f in plan.wanted if remux] + ["json"]
    existing = [str(names[k]) for k in keys if names[k].exists()]
    if existing and not force_overwrite:
        raise FileExistsError(f"{plan.path}: outputs already exist ({', '.join(existing)}); "
                              "pass --force / force_overwrite=True to replace them.")
    results = _results(plan)
    rate = int(model.sample_rate)
    with contextlib.ExitStack() as outputs:
        # Entered first, renamed last: a sidecar on disk means that every output is complete.
        json_tmp = outputs.enter_context(atomic_path(names["json"]))
        wav_tmps = {f: outputs.enter_context(atomic_path(names[f"wav{f + 1}"])) for f in plan.wanted}
        with contextlib.ExitStack() as files:
            writers = [files.enter_context(sf.SoundFile(str(wav_tmps[f]), "w", rate, 1, "PCM_16"))
                       for f in plan.wanted]
            clipped, written = np.zeros(len(writers), np.int64), 0
            for _, piece in _stream(model, plan, chunks, progress):
                clipped += np.count_nonzero(np.abs(piece) > 1.0, axis=1)
                written += piece.shape[1]
                for writer, row in zip(writers, piece):
                    writer.write(np.clip(row, -1.0, 1.0))
        for f, n_clipped in zip(plan.wanted, clipped):
            if n_clipped:
                logger.warning("%s: %d samples (%.2f %%) of face %d's voice were beyond full scale, clipped in %s",
                               plan.path, n_clipped, 100 * n_clipped / written, f + 1, names[f"wav{f + 1}"])
        for f in plan.wanted:
            results[f].output = names[f"wav{f + 1}"]
            if remux:
                mp4_tmp = outputs.enter_context(atomic_path(names[f"mp4{f + 1}"]))
                remux_with_audio(plan.path, wav_tmps[f], mp4_tmp)
                results[f].video_output = names[f"mp4{f + 1}"]
        sidecar = dict(
            video=str(plan.path),
            model=type(model).__name__,
            sample_rate=rate,
            fps=plan.config.fps,
            n_frames=len(plan.tracks[0].mask),
            visual=dict(lip_size=plan.config.lip_size, lip_scale=plan.config.lip_scale,
                        detect_every=plan.config.detect_every),
            chunks=chunks.__dict__,
            precision=plan.precision,
            faces=[r.to_json(plan.config.fps) for r in results],
        )
        json_tmp.write_text(_sidecar_text(sidecar))
    logger.info("%s: wrote %s", plan.path, ", ".join(str(names[k]) for k in keys))
    return results


def _sidecar_text(sidecar: Dict[str, object]) -> str:
    """JSON with one line per key and one line per face (frames and boxes stay on that line)."""
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in sidecar.items() if k != "faces"]
    faces = ",\n".join(f"  {json.dumps(face)}" for face in sidecar["faces"])
    return "{\n" + ",\n".join(lines) + ',\n "faces": [\n' + faces + "\n ]\n}\n"


def remux_with_audio(video: PathLike, wav: PathLike, out: PathLike, bit_rate: int = 128000) -> None:
    """Write ``out`` (mp4): the video stream of ``video`` copied as is, with ``wav`` as AAC audio."""
    with av.open(str(video)) as src, av.open(str(out), "w", format="mp4") as dst, \
            sf.SoundFile(str(wav)) as sound:
        v_in = src.streams.video[0]
        v_out = dst.add_stream_from_template(v_in)
        a_out = dst.add_stream("aac", rate=sound.samplerate, layout="mono")
        a_out.bit_rate = bit_rate
        for packet in src.demux(v_in):
            if packet.dts is None:  # the demuxer's final flush packet
                continue
            packet.stream = v_out
            dst.mux(packet)
        position = 0
        for block in sound.blocks(blocksize=1024 * 16, dtype="float32", always_2d=True):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.T), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = sound.samplerate, position
            frame.time_base = Fraction(1, sound.samplerate)
            dst.mux(a_out.encode(frame))
            position += len(block)
        dst.mux(a_out.encode())


def _progress(chunks: Iterator[np.ndarray], enabled: bool, desc: str, total: Optional[float],
              seconds_per_item: float) -> Iterator[np.ndarray]:
    """Pass ``chunks`` through, counting their length in seconds on a tqdm bar."""
    with tqdm(total=total, unit="s", desc=desc, disable=not enabled,
              bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]") as bar:
        for chunk in chunks:
            _advance(bar, len(chunk) * seconds_per_item)
            yield chunk


def _advance(bar: tqdm, seconds: float) -> None:
    """Advance ``bar``; a header duration shorter than the stream (codec padding) grows it."""
    if bar.total is not None and bar.n + seconds > bar.total:
        bar.total = bar.n + seconds
    bar.update(seconds)
