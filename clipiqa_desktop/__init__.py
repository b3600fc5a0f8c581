"""clipiqa-desktop: photo culling with CLIP-IQA scores."""

__version__ = "0.1.0"
