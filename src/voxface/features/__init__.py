"""Feature mode: every file of a data root embedded once by a frozen encoder, stored for training and evaluation."""

from voxface.features.extract import data_files, extract_features, extract_with, feature_stores, weights_sha256
from voxface.features.store import FeatureStore, StoreView

__all__ = ["FeatureStore", "StoreView", "data_files", "extract_features", "extract_with", "feature_stores",
           "weights_sha256"]
