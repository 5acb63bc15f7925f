"""``asteroid-avspeech``: command-line entry points.

``asteroid-avspeech separate clip.mp4 [--face K | --point x,y] [--remux] [-o DIR] [--model PATH]``
writes ``clip_est<k>.wav`` per face (face order: first appearance, then left to right), the
sidecar ``clip_faces.json`` and, with ``--remux``, ``clip_est<k>.mp4`` (the video with that
face's voice). ``asteroid-infer MODEL --files clip.mp4`` writes the same wav files and sidecar
but has no options for face selection or remuxing. A sound file (``mix.wav``) has no faces: it is
separated audio-only into ``mix_est<k>.wav`` (output order arbitrary, one warning), as by ``asteroid-infer``.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch

from .file_routing import is_video_path, separate_sound_file
from .models import load_model
from .separate import output_paths, usable_device, visual_config_for, write_video_separation
from .streaming import ChunkSettings
from .video.decode import VideoReadError

logger = logging.getLogger(__name__)

#: Model used when ``--model`` is not given: the recipe's default experiment.
DEFAULT_MODEL = Path("exp/l2l/best_model.pth")


def parse_point(text: str) -> Tuple[float, float]:
    """``"x,y"`` (fractions of the frame width and height) -> ``(x, y)``."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y (e.g. 0.25,0.4), got {text!r}") from None
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise argparse.ArgumentTypeError(f"x and y are fractions of the frame size, in [0, 1]: got {text!r}")
    return x, y


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asteroid-avspeech", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sep = commands.add_parser("separate", help="one separated voice per face of a video")
    sep.add_argument("videos", nargs="+", type=Path,
                     help="video files with a mixed soundtrack (sound files: audio-only, without --face/--point/--remux)")
    choose = sep.add_mutually_exclusive_group()
    choose.add_argument("--face", type=int, default=None, help="only face K (1-based, in face order)")
    choose.add_argument("--point", type=parse_point, default=None,
                        help="only the face at x,y (fractions of the frame width, height)")
    sep.add_argument("--remux", action="store_true", help="also write one mp4 per face with its voice")
    sep.add_argument("-o", "--output-dir", type=Path, default=None, help="default: next to each video")
    sep.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"model package (default {DEFAULT_MODEL})")
    sep.add_argument("--device", default=None, help="cpu | cuda[:i] (default: cuda if available)")
    sep.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                     help="mask network precision (auto: bf16 where the hardware has it, else fp32)")
    sep.add_argument("--chunk-seconds", type=float, default=ChunkSettings.chunk_seconds)
    sep.add_argument("--overlap-seconds", type=float, default=ChunkSettings.overlap_seconds)
    sep.add_argument("--lip-size", type=int, default=None, help="override the model's lip crop size")
    sep.add_argument("--lip-scale", type=float, default=None, help="override the model's lip crop scale")
    sep.add_argument("--detect-every", type=int, default=None, help="MTCNN on every k-th frame")
    sep.add_argument("--facenet-weights", type=Path, default=None,
                     help="InceptionResnetV1 weights (models trained on face embeddings only)")
    sep.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    sep.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return parser


def separate_command(args: argparse.Namespace) -> int:
    """Run ``separate`` on every video; return the exit status (1 if any video failed)."""
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = load_model(args.model)
    except (FileNotFoundError, ValueError) as err:
        hint = " Train one with ./run.sh or pass --model PATH." if args.model == DEFAULT_MODEL else ""
        logger.error("%s%s", err, hint)
        return 1
    config = visual_config_for(
        model, lip_size=args.lip_size, lip_scale=args.lip_scale, detect_every=args.detect_every,
        facenet_weights=str(args.facenet_weights) if args.facenet_weights else None,
    )
    chunks = ChunkSettings(args.chunk_seconds, args.overlap_seconds)
    status = 0
    for video in args.videos:
        if not is_video_path(video):
            status |= _separate_sound_file(model, video, args, chunks, device)
            continue
        try:
            results = write_video_separation(
                model, video, args.output_dir, face=args.face, point=args.point, remux=args.remux,
                visual_config=config, chunks=chunks, device=device, precision=args.precision,
                force_overwrite=args.force,
                progress=not args.quiet,
            )
        except (VideoReadError, ValueError, FileExistsError) as err:
            logger.error("%s", err)
            status = 1
            continue
        for face in results:
            if face.output is not None:
                print(f"face {face.index}: {face.output}" + (f", {face.video_output}" if face.video_output else ""))
    return status


def _separate_sound_file(model, path: Path, args: argparse.Namespace, chunks: ChunkSettings, device: str) -> int:
    """A sound file has no faces: separated audio-only (:func:`separate_sound_file`). 1 on an error (logged)."""
    video_only = [name for name, given in (("--face", args.face is not None), ("--point", args.point is not None),
                                           ("--remux", args.remux)) if given]
    if video_only:
        logger.error("%s: a sound file has no faces to choose or picture to remux, so %s only apply to videos; "
                     "drop them to separate it audio-only.", path, " and ".join(video_only))
        return 1
    names = output_paths(path, args.output_dir, model.n_src)
    tracks = [names[f"wav{k}"] for k in range(1, model.n_src + 1)]
    existing = [str(track) for track in tracks if track.exists()]
    if existing and not args.force:
        logger.error("%s: outputs already exist (%s); pass --force to replace them.", path, ", ".join(existing))
        return 1
    model.warn_audio_only()
    try:
        separate_sound_file(model.to(usable_device(device)), path, args.output_dir, force_overwrite=True,
                            chunks=chunks, progress=not args.quiet)
    except (FileNotFoundError, ValueError) as err:
        logger.error("%s", err)
        return 1
    print(f"{path}: " + ", ".join(map(str, tracks)) + " (audio-only: output order arbitrary)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``asteroid-avspeech``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s: %(message)s")
    return separate_command(args)


if __name__ == "__main__":
    sys.exit(main())
