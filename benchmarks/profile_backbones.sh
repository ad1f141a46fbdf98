#!/usr/bin/env bash
# Backbone comparison profiles: ResNet-50, Swin-T, ConvNeXt-T,
# EfficientNetV2-S and EfficientNet-Lite0 under Hyper-IQA, fp32 and bf16, batch 1 and 64.
# Usage: bash benchmarks/profile_backbones.sh cpu|cuda [OUT_DIR]
set -euo pipefail
DEVICE=${1:-cpu}
OUT=${2:-results/profile/$DEVICE}
export HF_HUB_OFFLINE=1
BACKBONES=(--backbone resnet50 --backbone swin_tiny_patch4_window7_224 --backbone convnext_tiny
           --backbone efficientnetv2_s --backbone tf_efficientnet_lite0)
for amp in none bf16; do
  dtype=${amp/none/fp32}
  # batch 1: both hyper inputs; batch 64: the original hyper input (cost differs little);
  # 25 crops per image (the original 5x5 test grid) for ms_per_image
  iqabench profile "${BACKBONES[@]}" --hyper-input last --hyper-input multiscale --eval-crops 25 \
      --device "$DEVICE" --amp "$amp" --eval-batch-size 1 --out "$OUT/${dtype}_batch1" --force
  iqabench profile "${BACKBONES[@]}" --hyper-input last --eval-crops 25 \
      --device "$DEVICE" --amp "$amp" --eval-batch-size 64 --out "$OUT/${dtype}_batch64" --force
done
