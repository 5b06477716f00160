"""What the file itself says: a DICOM Modality tag is strong evidence for a label.

The model's calibrated probabilities are combined with the tag as a Bayes prior:
p(label | image, tag) ∝ p(label | image) · prior(label | tag). Labels missing from the model's
label set are ignored, so a model with other labels still works.
"""

from __future__ import annotations

import numpy as np

# DICOM Modality (0008,0060) codes → label
MODALITY_LABEL = {
    "CR": "xray", "DX": "xray", "MG": "xray", "RF": "xray", "XA": "xray", "IO": "xray", "PX": "xray",
    "RG": "xray", "DF": "xray", "CT": "ct", "MR": "mri", "US": "ultrasound", "IVUS": "ultrasound",
    "SM": "histology", "GM": "histology", "ES": "endoscopy", "OP": "fundus",
}
# Imaging modalities that are medical but have no label of their own (PET, nuclear medicine, OCT…)
OTHER_MEDICAL = {"PT", "NM", "OPT", "IVOCT", "BMD"}
WEIGHT = 50.0  # how many times likelier the tagged label is a priori


def dicom_prior(metadata: dict, labels: list[str], medical_labels: set[str]) -> np.ndarray | None:
    """Prior weights over `labels` from a DICOM Modality tag, or None when the tag says nothing."""
    modality = str(metadata.get("Modality") or "").strip().upper()
    if not modality:
        return None
    prior = np.ones(len(labels))
    target = MODALITY_LABEL.get(modality)
    if target in labels:
        prior[labels.index(target)] = WEIGHT
        return prior
    if modality in OTHER_MEDICAL:
        for i, lb in enumerate(labels):
            if lb in medical_labels:
                prior[i] = WEIGHT
        return prior
    return None  # SC, OT, DOC, SR, unknown: secondary captures can be anything


def apply_prior(probs: np.ndarray, prior: np.ndarray) -> np.ndarray:
    p = probs * prior
    return p / p.sum()
