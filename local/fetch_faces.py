#!/usr/bin/env python
"""Put the face photos of the generated corpus into the cache; optionally re-measure their landmarks.

    python local/fetch_faces.py [--cache DIR]           # extract kphotoalbum demo photos (apt-get download)
    python local/fetch_faces.py --align                 # also rerun MTCNN, rewrite face_landmarks.json
"""
import argparse
import logging
from pathlib import Path

from asteroid_avspeech.data.synthetic.faces import LANDMARKS_JSON, align_photos, default_cache_dir, fetch_photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="cache folder (default: %(default)s)")
    parser.add_argument("--align", action="store_true", help=f"rerun MTCNN and rewrite {LANDMARKS_JSON}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.info("Photos in %s", fetch_photos(args.cache))
    if args.align:
        align_photos(args.cache)
        logging.info("Wrote %s", LANDMARKS_JSON)


if __name__ == "__main__":
    main()
