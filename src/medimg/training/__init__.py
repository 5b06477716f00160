"""Training the classifier: corpus cache, augmentation, network, training, export, calibration, evaluation."""
