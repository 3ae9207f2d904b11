#!/usr/bin/env bash
# The accuracy benchmarks of docs/RESULTS.md, as run on a lent GPU machine (one H100) through the device tool.
# The machine has no network: the MiniLM weights (fp16 copy, see stage_minilm.py), the benchmark data and the
# wheels of hfclf's missing dependencies travel in .bench/ (not committed). Usage: bash benchmarks/gpu.sh STAGE
set -euo pipefail
stage=$1
out=${OUT:-/tmp/out}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .bench/wheels/*.whl 2>/dev/null || true
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
data=.bench/data
gpu=(--bf16 true --dataloader_num_workers 4 --preprocessing_num_workers 8 --per_device_eval_batch_size 256 --disable_tqdm true)
case $stage in
  sst2)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    python3 recipes/compare.py recipes/configs/sst2_pooling.yaml --data_dir $data --model /tmp/minilm \
        --report_dir reports/sst2_pooling "${gpu[@]}" ;;
  ag_news)
    python3 benchmarks/stage_minilm.py .bench/model /tmp/minilm
    python3 benchmarks/ag_news_cv.py --data_dir $data --out reports/ag_news_cv --model /tmp/minilm \
        --num_train_epochs 4 --learning_rate 1e-4 --per_device_train_batch_size 32 "${gpu[@]}" ;;
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
esac
# Bring back the reports without model weights or per-example predictions.
tar czf "$out/$stage.tar.gz" --exclude='*.safetensors' --exclude='predictions.csv' --exclude='checkpoint-*' \
    --exclude='*.bin' --exclude='folds' --exclude='tokenizer.json' reports
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/gpu.txt"
