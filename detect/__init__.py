"""Deepfake detection: face-crop datasets from real videos and labelled swaps, a timm classifier,
evaluation (frame/video AUC, EER, AP, accuracy) and per-video scoring with timelines.

Every stage is a plain function (`build_dataset`, `train_detector`, `evaluate`, `score_video`);
`detect.cli` is a thin typer layer over them. torch/timm are imported only where a model is used.
"""
