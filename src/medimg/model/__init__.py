"""Images → predictions: an ONNX Runtime session over the shipped model, calibrated."""

from .classifier import Classifier, Prediction, verdict_for

__all__ = ["Classifier", "Prediction", "verdict_for"]
