#!/usr/bin/env python
"""Stage 0 (embedded default): generate a talking-face corpus laid out like AVSpeech.

    python local/generate_corpus.py --out data/synth --n-speakers 20 --clips-per-speaker 15 --workers 2
    python local/generate_corpus.py --list                 # face and voice names
    python local/generate_corpus.py --noise-out data/noise # coloured noise, hum and babble wavs

Rerunning with the same arguments resumes: finished clips are kept.
"""
import argparse
import logging
import sys
from pathlib import Path

from asteroid_avspeech.data.synthetic.corpus import CorpusConfig, generate_corpus
from asteroid_avspeech.data.synthetic.faces import default_cache_dir, face_names
from asteroid_avspeech.data.synthetic.noise import generate_noise
from asteroid_avspeech.data.synthetic.tts import VOICES


def _names(value: str) -> list:
    return [v.strip() for v in value.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="corpus folder")
    parser.add_argument("--n-speakers", type=int, default=20)
    parser.add_argument("--clips-per-speaker", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=3.0, help="clip length")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes")
    parser.add_argument("--faces", type=_names, help="comma-separated face names (default: all, photos first)")
    parser.add_argument("--voices", type=_names, help="comma-separated voice names (default: all)")
    parser.add_argument("--size", type=int, default=256, help="frame size in pixels")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="face photo cache")
    parser.add_argument("--noise-out", type=Path, help="also write noise wavs + noise.csv here")
    parser.add_argument("--noise-files", type=int, default=4, help="files per noise kind")
    parser.add_argument("--noise-seconds", type=float, default=10.0)
    parser.add_argument("--list", action="store_true", help="list face and voice names and exit")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.list:
        print("faces:", " ".join(face_names()))
        print("voices:", " ".join(v.name for v in VOICES))
        return
    if args.out is None and args.noise_out is None:
        parser.error("give --out (corpus) and/or --noise-out (noise), or --list")
    try:
        run(args)
    except (ValueError, RuntimeError) as err:
        sys.exit(f"error: {err}")


def run(args: argparse.Namespace) -> None:
    """Generate the corpus and/or the noise folder asked for by ``args``."""
    if args.out is not None:
        cfg = CorpusConfig(seconds=args.seconds, size=args.size, cache_dir=str(args.cache))
        jobs = generate_corpus(
            args.out, args.n_speakers, args.clips_per_speaker, args.seed, cfg, args.faces, args.voices, args.workers
        )
        logging.info("Corpus of %d clips in %s", len(jobs), args.out)
    if args.noise_out is not None:
        generate_noise(args.noise_out, args.noise_files, args.noise_seconds, args.seed)
        logging.info("Noise in %s", args.noise_out)


if __name__ == "__main__":
    main()
