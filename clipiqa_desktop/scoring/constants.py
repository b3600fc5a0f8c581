"""Defaults and choices that the CLI and GUI need before (or without) importing torch/open_clip."""

DEFAULT_MODEL = "RN50"
DEFAULT_PRETRAINED = "openai"
WEIGHTS_ENV = "CLIPIQA_WEIGHTS"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
# `--model none`: index and score without CLIP, only the pixel measures (focus, exposure, faces);
# also the model_id their analysis is stored under.
NO_MODEL = "none"
