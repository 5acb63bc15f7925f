#!/usr/bin/env python
"""Stage 0 (real data): download AVSpeech segments listed in an official AVSpeech CSV.

Example::

    python local/download_avspeech.py --csv avspeech_train.csv --corpus data/avspeech \\
        --workers 8 --shard 0 --n-shards 4 --limit 2000
"""
import argparse
import json
import logging

from asteroid_avspeech.data.download import DEFAULT_FORMAT, download_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", required=True, help="official AVSpeech CSV (youtube_id,start,end,x,y)")
    parser.add_argument("--corpus", required=True, help="output corpus directory")
    parser.add_argument("--workers", type=int, default=4, help="parallel downloads")
    parser.add_argument("--shard", type=int, default=0, help="this shard (0-based)")
    parser.add_argument("--n-shards", type=int, default=1, help="number of shards (split by video)")
    parser.add_argument("--limit", type=int, default=None, help="keep only the first N valid rows")
    parser.add_argument("--retry-failed", action="store_true", help="retry rows in the failure log")
    parser.add_argument("--yt-dlp", default=None, help="yt-dlp executable (default: venv's, else PATH)")
    parser.add_argument("--ffmpeg", default=None, help="ffmpeg executable (default: PATH, else imageio-ffmpeg)")
    parser.add_argument("--format", default=DEFAULT_FORMAT, help="yt-dlp format selector")
    parser.add_argument("--min-duration", type=float, default=1.0, help="shortest accepted segment (s)")
    parser.add_argument("--max-duration", type=float, default=12.0, help="longest accepted segment (s)")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per external command")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = download_corpus(
        args.csv,
        args.corpus,
        yt_dlp=args.yt_dlp,
        ffmpeg=args.ffmpeg,
        workers=args.workers,
        shard=args.shard,
        n_shards=args.n_shards,
        limit=args.limit,
        retry_failed=args.retry_failed,
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        fps=args.fps,
        sample_rate=args.sample_rate,
        video_format=args.format,
        timeout=args.timeout,
    )
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
