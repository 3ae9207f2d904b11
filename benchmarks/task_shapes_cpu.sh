#!/usr/bin/env bash
# The task-shape benchmarks of docs/RESULTS.md ("Task shapes"), as run on this project's 2-core CPU (fp32), one run
# at a time. Usage: bash benchmarks/task_shapes_cpu.sh OUT_DIR [RUN...] (default: every run below).
# Each run writes OUT_DIR/<run>/ (results.json, predictions.csv, plots) and OUT_DIR/<run>.log.
set -euo pipefail
out=$1
shift
data=${HFCLF_DATA_DIR:-../shared/data}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
common=(--arch pooled --model minilm --data_dir "$data" --per_device_eval_batch_size 128 --disable_tqdm true)
run() {  # NAME FLAGS...
    local name=$1
    shift
    if [ -f "$out/$name/results.json" ]; then echo "$name: done earlier"; return; fi
    echo "$name: python recipes/finetune.py ${common[*]} $* --output_dir $out/$name"
    /usr/bin/time -v python recipes/finetune.py "${common[@]}" "$@" --output_dir "$out/$name" >"$out/$name.log" 2>&1
    grep -E "^(eval|test):" "$out/$name.log"
}
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(stsb_mean go_emotions rte imdb_ratings stsb_cls)
mkdir -p "$out"
for name in "${runs[@]}"; do
  case $name in
    stsb_mean) run stsb_mean --dataset stsb --pooling mean --normalize_targets --num_train_epochs 4 \
        --learning_rate 5e-5 --per_device_train_batch_size 32 --max_length 128 --warmup_steps 0.1 ;;
    stsb_cls) run stsb_cls --dataset stsb --pooling cls --normalize_targets --num_train_epochs 6 \
        --learning_rate 8e-5 --per_device_train_batch_size 32 --max_length 128 --warmup_steps 0.1 ;;
    go_emotions) run go_emotions --dataset go_emotions --pooling mean --threshold tune_per_label \
        --num_train_epochs 3 --learning_rate 1e-4 --per_device_train_batch_size 32 --max_length 64 --warmup_steps 0.1 ;;
    rte) run rte --dataset rte --pooling cls --num_train_epochs 8 --learning_rate 3e-5 \
        --per_device_train_batch_size 16 --max_length 256 --warmup_steps 0.1 ;;
    imdb_ratings) run imdb_ratings --dataset imdb_ratings --pooling mean --normalize_targets --num_train_epochs 1 \
        --learning_rate 5e-5 --per_device_train_batch_size 16 --max_length 256 --max_train_samples 2000 \
        --max_test_samples 2000 --warmup_steps 0.1 ;;
    # The IMDB long-text strategies (truncate, head_tail, windows) run as one comparison, with its significance
    # tests: hfclf compare benchmarks/configs/imdb_long_text.yaml --data_dir "$data"
    *) echo "unknown run $name" >&2; exit 2 ;;
  esac
done
