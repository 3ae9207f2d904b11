#!/usr/bin/env bash
# The accuracy benchmarks of docs/RESULTS.md and the speed benchmark of docs/PERFORMANCE.md (stage perf), as run on a
# lent GPU machine (one H100) through the device tool.
# The machine has no network: the MiniLM weights (fp16 copy, see stage_minilm.py), the benchmark data and the
# wheels of hfclf's missing dependencies travel in .bench/ (not committed). Usage: bash benchmarks/gpu.sh STAGE
set -euo pipefail
STAGES="perf ag_news imdb_scratch imdb_minilm imdb_parallel"
stage=${1:-}
if [[ " $STAGES " != *" $stage "* ]]; then
    echo "usage: bash benchmarks/gpu.sh STAGE, with STAGE one of: $STAGES (see the comments of this file)" >&2
    exit 2
fi
out=${OUT:-/tmp/out}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .bench/wheels/*.whl 2>/dev/null || true
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
data=.bench/data
gpu=(--bf16 true --dataloader_num_workers 4 --preprocessing_num_workers 8 --per_device_eval_batch_size 256 --disable_tqdm true)
# Finished runs carried in .bench/reports are skipped, so a stage resumes across machines.
mkdir -p reports && if [ -d .bench/reports ]; then cp -rn .bench/reports/. reports/; fi

# Small models leave an H100 mostly idle, so the later stages run several processes on the one GPU (each with its
# own datasets cache and 1 dataloader worker), stopped after $BUDGET seconds so the reports still come back.
shared=(--bf16 true --dataloader_num_workers 1 --preprocessing_num_workers 2 --per_device_eval_batch_size 256 --disable_tqdm true)
in_background() {  # NAME LOG COMMAND...
    local name=$1 log=$2
    shift 2
    HF_DATASETS_CACHE=/tmp/cache/$name timeout "${BUDGET:-540}" "$@" "${shared[@]}" >"$log" 2>&1 &
}
parallel_variants() {  # CONFIG REPORT_DIR MODEL VARIANT...: one compare process per variant
    local config=$1 report=$2 model=$3
    shift 3
    mkdir -p "$report/logs"
    for variant in "$@"; do
        in_background "$variant" "$report/logs/$variant.log" python3 recipes/compare.py "$config" \
            --variants "$variant" --data_dir $data --model "$model" --report_dir "$report"
    done
}
case $stage in
  perf)  # issue 15's GPU section: benchmarks/perf.py on the GPU (bf16), absolute times; PARTS/REPEATS to fit the budget.
    # Written straight into $out after every part, so what was measured comes back even when the call runs out of time.
    python3 -c 'import torch, transformers, datasets; print(torch.__version__, transformers.__version__, datasets.__version__)'
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt"
    python3 benchmarks/perf.py --device cuda --model /tmp/minilm --data_dir $data --parts "${PARTS:-train,eval,infer}" \
        --repeats "${REPEATS:-3}" --work_dir /tmp/perf --output "$out/perf_gpu.json" 2>&1 | tee "$out/perf_gpu.log"
    exit ;;
  sst2)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    python3 recipes/compare.py recipes/configs/sst2_pooling.yaml --data_dir $data --model /tmp/minilm \
        --report_dir reports/sst2_pooling "${gpu[@]}" ;;
  ag_news)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    python3 benchmarks/ag_news_cv.py --data_dir $data --out reports/ag_news_cv --model /tmp/minilm \
        --num_train_epochs 3 --learning_rate 1e-4 --per_device_train_batch_size 32 "${gpu[@]}" ;;
  imdb_scratch)
    python3 benchmarks/stage_minilm.py .bench/emb /tmp/minilm_embeddings
    python3 recipes/compare.py benchmarks/configs/imdb_lstm.yaml --data_dir $data --model /tmp/minilm_embeddings \
        --report_dir reports/imdb_lstm "${gpu[@]}"
    python3 recipes/finetune.py --dataset imdb --data_dir $data --model /tmp/minilm_embeddings --arch transformer \
        --pooling mean --max_length 400 --num_train_epochs 5 --learning_rate 5e-4 --per_device_train_batch_size 32 \
        --output_dir reports/imdb_tiny_transformer/post-ln-mean "${gpu[@]}" ;;
  imdb_minilm)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    python3 recipes/finetune.py --dataset imdb --data_dir $data --model /tmp/minilm --pooling mean --max_length 512 \
        --num_train_epochs 2 --learning_rate 5e-5 --per_device_train_batch_size 32 \
        --output_dir reports/imdb_minilm512/run "${gpu[@]}" ;;
  imdb_parallel)
    python3 benchmarks/stage_minilm.py .bench/emb /tmp/minilm_embeddings
    parallel_variants benchmarks/configs/imdb_lstm.yaml reports/imdb_lstm /tmp/minilm_embeddings \
        bilstm-max-seed43 bilstm-max-seed44
    parallel_variants benchmarks/configs/imdb_tiny_transformer.yaml reports/imdb_tiny_transformer /tmp/minilm_embeddings \
        pre-ln pre-ln-seed43 pre-ln-seed44 pre-ln-max pre-ln-dropout0.3 pre-ln-small
    wait ;;
  sst2_ag_parallel)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    parallel_variants benchmarks/configs/sst2_pooling_lr.yaml reports/sst2_pooling_lr /tmp/minilm \
        cls-learningrate3e-5 cls-learningrate5e-5 max-learningrate3e-5 max-learningrate5e-5 \
        mean-learningrate3e-5 attention-learningrate3e-5
    for poolings in cls,mean max,attention; do
        in_background "ag-$poolings" "reports/ag_news_cv-$poolings.log" python3 benchmarks/ag_news_cv.py \
            --poolings $poolings --data_dir $data --out reports/ag_news_cv --model /tmp/minilm --num_train_epochs 3 \
            --learning_rate 1e-4 --per_device_train_batch_size 32
    done
    wait ;;
  sst2_round2)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    parallel_variants benchmarks/configs/sst2_pooling_lr.yaml reports/sst2_pooling_lr /tmp/minilm \
        cls-learningrate2e-5 cls-learningrate3e-5-seed43 cls-learningrate5e-5-seed43 mean-learningrate3e-5-seed43 \
        max-learningrate5e-5-seed43 attention-learningrate3e-5-seed43
    wait ;;
  sst2_round3)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    parallel_variants benchmarks/configs/sst2_pooling_lr.yaml reports/sst2_pooling_lr /tmp/minilm \
        cls-learningrate2e-5-epochs4 cls-learningrate2e-5-epochs4-seed43 cls-learningrate1e-5-epochs4 \
        cls-learningrate3e-5-batch64-epochs4 cls-learningrate5e-5-batch64
    wait ;;
  sst2_round4)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    parallel_variants benchmarks/configs/sst2_pooling_lr.yaml reports/sst2_pooling_lr /tmp/minilm \
        cls-learningrate3e-5-head3e-4 cls-learningrate3e-5-head1e-3 cls-learningrate3e-5-head3e-4-decay0.9 \
        cls-learningrate5e-5-decay0.9 cls-learningrate5e-5-head5e-4-decay0.9 cls-learningrate1e-4-decay0.8 \
        cls-learningrate3e-5-warmup0.2 cls-learningrate2e-5-head1e-3-decay0.9
    wait ;;
  sst2_round5)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    parallel_variants benchmarks/configs/sst2_pooling_lr.yaml reports/sst2_pooling_lr /tmp/minilm \
        cls-learningrate1e-4-decay0.8-seed{43,44,45,46} cls-learningrate3e-5-head3e-4-decay0.9-seed{43,44,45,46}
    wait ;;
  sst2_round6)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    parallel_variants benchmarks/configs/sst2_pooling_lr.yaml reports/sst2_pooling_lr /tmp/minilm \
        {mean,max,attention}-learningrate1e-4-decay0.8{,-seed43,-seed44}
    wait ;;
  sst2_round7)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    parallel_variants benchmarks/configs/sst2_pooling_lr.yaml reports/sst2_pooling_lr /tmp/minilm \
        {mean,max,attention}-learningrate1e-4-decay0.8-seed{45,46}
    wait ;;
  imdb_round2)
    python3 benchmarks/stage_minilm.py .bench/emb /tmp/minilm_embeddings
    parallel_variants benchmarks/configs/imdb_tiny_transformer.yaml reports/imdb_tiny_transformer /tmp/minilm_embeddings \
        pre-ln-small-seed43 pre-ln-small-seed44
    wait ;;
esac
# Bring back the reports without model weights or per-example predictions.
tar czf "$out/$stage.tar.gz" --exclude='*.safetensors' --exclude='predictions.csv' --exclude='checkpoint-*' \
    --exclude='*.bin' --exclude='folds' --exclude='tokenizer.json' reports
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/gpu.txt"
