"""Video side of the pipeline: decoding (PyAV), face detection and tracking (MTCNN), crops.

Stage 2 (``asteroid_avspeech.data.visual_features``) and inference call the same functions, so a
crop made at inference is exactly the crop the model saw in training.
"""
