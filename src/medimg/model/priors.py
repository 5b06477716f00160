"""What the file itself says: a DICOM Modality tag, or a format only microscopes and slide scanners write,
is strong evidence for a label.

The model's calibrated probabilities are combined with it as a Bayes prior:
p(label | image, file) ∝ p(label | image) · prior(label | file). When the model has no such label, the
evidence still says "medical": every medical label is weighted up instead.
"""

from __future__ import annotations

import numpy as np

# DICOM Modality (0008,0060) codes → label
MODALITY_LABEL = {
    "CR": "xray", "DX": "xray", "MG": "xray", "RF": "xray", "XA": "xray", "IO": "xray", "PX": "xray",
    "RG": "xray", "DF": "xray", "RTIMAGE": "xray", "CT": "ct", "MR": "mri", "US": "ultrasound", "IVUS": "ultrasound",
    "SM": "histology", "GM": "histology", "ES": "endoscopy", "OP": "fundus",
}
# Imaging modalities that are medical but have no label of their own (PET, nuclear medicine, OCT…)
OTHER_MEDICAL = {"PT", "NM", "OPT", "IVOCT", "BMD"}
# Source formats written only by microscopes and slide scanners (items' `format`; "WSI (…)" for OpenSlide's;
# OME-TIFF is the Open Microscopy Environment's. ImageJ TIFFs are not: ImageJ saves any scientific image.)
FORMAT_LABEL = {"CZI": "histology", "LIF": "histology", "MRC": "histology", "WSI": "histology",
                "OME-TIFF": "histology"}
WEIGHT = 50.0  # how many times likelier the tagged label is a priori


def dicom_prior(metadata: dict, labels: list[str], medical_labels: set[str]) -> np.ndarray | None:
    """Prior weights over `labels` from a DICOM Modality tag, or None when the tag says nothing."""
    modality = str(metadata.get("Modality") or "").strip().upper()
    if not modality:
        return None
    target = MODALITY_LABEL.get(modality)
    if target is None and modality not in OTHER_MEDICAL:
        return None  # SC, OT, DOC, SR, unknown: secondary captures can be anything
    return _towards(target, labels, medical_labels)


def format_prior(fmt: str | None, labels: list[str], medical_labels: set[str]) -> np.ndarray | None:
    """Prior weights from the source format (a Zeiss CZI, a Leica LIF, an EM map, a whole slide), else None."""
    target = FORMAT_LABEL.get(str(fmt or "").split(" (")[0])
    return _towards(target, labels, medical_labels) if target else None


def _towards(target: str | None, labels: list[str], medical_labels: set[str]) -> np.ndarray:
    prior = np.ones(len(labels))
    if target in labels:
        prior[labels.index(target)] = WEIGHT
    else:  # a label this model lacks (or medical without a label of its own): at least medical
        for i, lb in enumerate(labels):
            if lb in medical_labels:
                prior[i] = WEIGHT
    return prior


def apply_prior(probs: np.ndarray, prior: np.ndarray) -> np.ndarray:
    p = probs * prior
    return p / p.sum()
