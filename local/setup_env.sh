#!/usr/bin/env bash
# Make this checkout ready to run: Debian tools, a .venv with the pinned Python stack, and the
# package installed in editable mode. Every step is a check first, so a ready machine costs ~1 s.
# Usage: local/setup_env.sh            (from the repository root; as root for the Debian tools)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
python_bin=${PYTHON:-python3}
debian_tools="espeak-ng ffmpeg"   # TTS for the embedded corpus, ffmpeg for re-encoding downloads

missing_tools=""
for tool in $debian_tools; do
  command -v "$tool" >/dev/null 2>&1 || missing_tools="$missing_tools $tool"
done
if [ -n "$missing_tools" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages:$missing_tools. Install them with: sudo apt-get install -y$missing_tools" >&2
    exit 1
  fi
  echo "[setup] installing Debian packages:$missing_tools"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing_tools >/dev/null
fi

if [ ! -x "$venv/bin/python" ]; then
  "$python_bin" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"' \
    || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
  echo "[setup] creating $venv"
  "$python_bin" -m venv "$venv"
fi

if ! "$venv/bin/python" local/check_env.py requirements.txt "facenet-pytorch==2.6.0" "asteroid-avspeech" >/dev/null \
   || [ ! -x "$venv/bin/asteroid-avspeech" ] \
   || ! "$venv/bin/python" -c 'import asteroid_avspeech_autoload as m; print(m.__file__)' 2>/dev/null \
        | xargs -r cmp -s asteroid_avspeech/_autoload/asteroid_avspeech_autoload.py; then
  echo "[setup] installing the Python stack into $venv (first time: a few minutes)"
  "$venv/bin/pip" install -q -r requirements.txt 2> >(grep -v "is ignored: it is neither" >&2)
  # facenet-pytorch pins torch<2.3, numpy<2, Pillow<10.3 in its metadata: resolving them would pull
  # ~3 GB of old CUDA wheels, and none of them is needed. Hence --no-deps.
  "$venv/bin/pip" install -q --no-deps facenet-pytorch==2.6.0
  "$venv/bin/pip" install -q --no-deps --no-build-isolation -e .
  "$venv/bin/python" local/check_env.py requirements.txt "facenet-pytorch==2.6.0" "asteroid-avspeech"
fi
