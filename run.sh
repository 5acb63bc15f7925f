#!/usr/bin/env bash
# Looking to Listen at a Cocktail Party (Ephrat et al. 2018) as an asteroid recipe.
#
#   ./run.sh                                  # everything, on the embedded generated corpus
#   ./run.sh --stage 4 --tag big --id 0,1     # train on GPUs 0 and 1 (Lightning DDP)
#   ./run.sh --stage 0 --stop-stage 0 --n_speakers 30   # any conf.yml key is an option
#
# Stages: 0 corpus (generate, or download AVSpeech) | 1 audio | 2 faces & visual features |
#         3 mixtures & splits | 4 training | 5 evaluation | 6 publish
set -euo pipefail
cd "$(dirname "$0")"

# General
stage=0            # first stage to run
stop_stage=100     # last stage to run
tag=""             # experiment name: exp/<tag> (default: l2l)
id=${CUDA_VISIBLE_DEVICES:-}   # GPU ids, e.g. 0,1 (passed to CUDA_VISIBLE_DEVICES); empty = CPU
conf=conf.yml      # recipe configuration; any of its keys can be given as --key value
expdir=""          # experiment directory (default: exp/<tag>)
results=RESULTS.md # stage 6 appends its results table here
python_path=.venv/bin/python   # the default venv is created/checked by local/setup_env.sh

help_message="Usage: $0 [--stage N] [--stop-stage N] [--tag NAME] [--id GPU_IDS] [--conf conf.yml]
          [--python_path PYTHON] [--expdir DIR] [--results RESULTS.md] [--<conf key> VALUE ...]
Stages: 0 corpus | 1 audio | 2 visual features | 3 mixtures | 4 train | 5 evaluate | 6 publish"

. utils/parse_options.sh
recipe_start=$(date +%s)   # stage 4 fits training into conf.yml's recipe_minutes, counted from here

if [ "$python_path" = .venv/bin/python ]; then
  echo "Setup: checking the environment (local/setup_env.sh)"
  local/setup_env.sh
fi
tag=${tag:-l2l}
expdir=${expdir:-exp/$tag}
# glibc hands every large tensor buffer back to the OS when it is freed and page-faults it in
# again on the next step: 20 % of a CPU training step went to the kernel (measured, small
# preset). Keeping freed buffers in the heap removes that; memory stays at its peak instead.
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-1000000000000}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-1000000000000}
# OMP_WAIT_POLICY stays at libgomp's default: PASSIVE (sleeping idle threads) made a training
# step 1.4x (fp32) to 1.8x (bf16) slower here, measured (README, "Disk and time").
common=(--conf "$conf" ${conf_overrides[@]+"${conf_overrides[@]}"})

elapsed() { local s=$(( $(date +%s) - recipe_start )); printf '%dm%02ds' $(( s / 60 )) $(( s % 60 )); }

# run_stage N "what it does" SCRIPT [ARGS...]: run SCRIPT when N is within --stage..--stop-stage.
run_stage() {
  local n=$1 what=$2 script=$3
  shift 3
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return 0; fi
  echo "Stage $n: $what [$(elapsed) since run.sh started]"
  if [ ! -f "$script" ]; then
    echo "Stage $n: $script is missing; is this a complete checkout?" >&2
    exit 1
  fi
  "$python_path" "$script" "${common[@]}" "$@"
}

run_stage 0 "corpus: generate the embedded corpus (or download AVSpeech), in AVSpeech layout" \
  local/prepare_corpus.py
run_stage 1 "audio: 16 kHz mono 16-bit wav per clip, exact length; silent clips dropped" \
  local/extract_audio.py
run_stage 2 "visual: face tracking, lip crops (and face embeddings), cached per clip" \
  local/extract_visual.py
run_stage 3 "mixtures: speaker-disjoint splits and fixed val/test mixture manifests" \
  local/make_mixtures.py
CUDA_VISIBLE_DEVICES=$id run_stage 4 "training -> $expdir" local/train.py --exp_dir "$expdir" \
  --recipe_start "$recipe_start"
CUDA_VISIBLE_DEVICES=$id run_stage 5 "evaluation on the test split -> $expdir" local/evaluate.py --exp_dir "$expdir"
run_stage 6 "publish: $expdir/publish_dir and RESULTS.md" local/publish.py --exp_dir "$expdir" --results "$results"
last_stage=6
echo "Done (stages $stage to $(( stop_stage < last_stage ? stop_stage : last_stage )), $(elapsed))."
