"""Defaults and choices that the CLI and GUI need before (or without) importing torch/open_clip."""

DEFAULT_MODEL = "RN50"
DEFAULT_PRETRAINED = "openai"
WEIGHTS_ENV = "CLIPIQA_WEIGHTS"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
# What runs the image tower: auto = ONNX Runtime on a CPU where it measures faster than torch.
ENGINE_CHOICES = ("auto", "torch", "onnx")
# Where exported ONNX towers and the remembered engine choice live (default: the user cache folder).
CACHE_ENV = "CLIPIQA_CACHE_DIR"
# `--model none`: index and score without CLIP, only the pixel measures (focus, exposure, faces);
# also the model_id their analysis is stored under.
NO_MODEL = "none"
