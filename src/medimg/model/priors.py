"""What the file itself says: a DICOM storage class or Modality tag, or a format only microscopes and slide
scanners write, is strong evidence for a label.

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
    "SM": "histology", "GM": "histology", "ES": "endoscopy", "OP": "fundus", "DMS": "dermoscopy", "BDUS": "ultrasound",
    # retired codes, still in old archives: cine- and videofluorography, subtraction angiography; echo and
    # Doppler ultrasound; MR angiography and spectroscopy; digital microscopy
    "CF": "xray", "VF": "xray", "DS": "xray", "EC": "ultrasound", "CD": "ultrasound", "DD": "ultrasound",
    "MA": "mri", "MS": "mri", "DM": "histology",
}
# Imaging modalities that are medical but have no label of their own (PET, nuclear medicine, OCT, SPECT…)
OTHER_MEDICAL = {"PT", "NM", "OPT", "OCT", "IVOCT", "BMD", "ST"}
# DICOM storage classes (SOPClassUID) that hold one kind of image only: near-certain evidence (SOP_WEIGHT).
# None: medical, without a label of its own. Ophthalmic photography (fundus, but also the outer eye) and
# secondary captures (anything) are left to the Modality tag.
_SOP = "1.2.840.10008.5.1.4.1.1."
SOP_LABEL = {_SOP + k: v for k, v in {
    "1": "xray", "1.1": "xray", "1.1.1": "xray", "1.2": "xray", "1.2.1": "xray", "1.3": "xray", "1.3.1": "xray",
    "12.1": "xray", "12.1.1": "xray", "12.2": "xray", "12.2.1": "xray", "12.3": "xray",
    "13.1.3": "xray", "13.1.4": "xray", "13.1.5": "xray", "481.1": "xray", "481.23": "xray", "481.24": "xray",
    "2": "ct", "2.1": "ct", "2.2": "ct",
    "4": "mri", "4.1": "mri", "4.3": "mri", "4.4": "mri",
    "3": "ultrasound", "3.1": "ultrasound", "6": "ultrasound", "6.1": "ultrasound", "6.2": "ultrasound",
    "77.1.1": "endoscopy", "77.1.1.1": "endoscopy",
    "77.1.2": "histology", "77.1.2.1": "histology", "77.1.3": "histology", "77.1.6": "histology",
    "77.1.8": "histology", "77.1.9": "histology",
    "77.1.7": "dermoscopy",
    "5": None, "20": None, "128": None, "128.1": None, "130": None,  # nuclear medicine, PET
    "14.1": None, "14.2": None, "77.1.5.4": None, "77.1.5.7": None,  # OCT
    "6.3": None, "13.1.1": None, "13.1.2": None,  # photoacoustic; X-ray 3D angiography and craniofacial volumes
}.items()}
# DICOS (security screening: luggage CT and X-ray) and DICONDE (industrial testing) use DICOM and its
# Modality codes for images that are not medical: no evidence either way.
NOT_MEDICAL_SOP = (_SOP + "501.", _SOP + "601.")
SOP_WEIGHT = 1e4  # a CT Image Storage file holds a CT image: only absurd pixels can outweigh it
# Source formats written only by microscopes and slide scanners (items' `format`; "WSI (…)" for OpenSlide's;
# OME-TIFF is the Open Microscopy Environment's. ImageJ TIFFs are not: ImageJ saves any scientific image.)
FORMAT_LABEL = {"CZI": "histology", "LIF": "histology", "MRC": "histology", "WSI": "histology",
                "OME-TIFF": "histology", "MGH": "mri"}  # MGH: FreeSurfer's MRI volumes
# Volume formats of medical imaging (MRI, CT, PET): medical, of no one label. NRRD and MetaImage (ITK, 3D
# Slicer) hold 2-D images of any kind too: only a volume of theirs counts (three axes of at least VOLUME_SIDE).
FORMAT_MEDICAL = {"NIfTI", "MINC"}
FORMAT_MEDICAL_VOLUME = {"NRRD", "MetaImage"}
VOLUME_SIDE = 5
WEIGHT = 50.0  # how many times likelier the tagged label is a priori
# Secondary captures carry their study's Modality whatever they show: a CT study's dose report (a page of text),
# a workstation's screenshots and charts. Their tag is weaker evidence (session 38: at 50, 15 of 20 text pages
# tagged CT were uncertain and 2 of 20 pie charts CT; at 10 all 40 non-medical, and 64 of 67 CT/X-ray/US/MR
# screenshots still medical).
SECONDARY_CAPTURE = {_SOP + k for k in ("7", "7.1", "7.2", "7.3", "7.4")}
SECONDARY_WEIGHT = 10.0


def dicom_prior(metadata: dict, labels: list[str], medical_labels: set[str]) -> np.ndarray | None:
    """Prior weights over `labels` from a DICOM file's storage class or Modality tag, or None when they say
    nothing."""
    return dicom_evidence(metadata, labels, medical_labels)[0]


def dicom_evidence(metadata: dict, labels: list[str], medical_labels: set[str]) -> tuple[np.ndarray | None, str]:
    """(prior, what it rests on): a storage class that holds one kind of image (SOP_LABEL) is near-certain;
    a Modality tag alone is strong evidence, weaker in a secondary capture (SECONDARY_WEIGHT)."""
    sop = str(metadata.get("SOPClassUID") or "").strip()
    if sop.startswith(NOT_MEDICAL_SOP):
        return None, ""
    if sop in SOP_LABEL:
        target = SOP_LABEL[sop]
        return _towards(target, labels, medical_labels, SOP_WEIGHT), f"DICOM {metadata.get('SOPClass') or sop}"
    modality = str(metadata.get("Modality") or "").strip().upper()
    if not modality:
        return None, ""
    target = MODALITY_LABEL.get(modality)
    if target is None and modality not in OTHER_MEDICAL:
        return None, ""  # SC, OT, DOC, SR, unknown: secondary captures can be anything
    weight = SECONDARY_WEIGHT if sop in SECONDARY_CAPTURE else WEIGHT
    return _towards(target, labels, medical_labels, weight), f"DICOM Modality {modality}"


def format_prior(fmt: str | None, labels: list[str], medical_labels: set[str],
                 metadata: dict | None = None) -> np.ndarray | None:
    """Prior weights from the source format (a Zeiss CZI, a Leica LIF, an EM map, a whole slide, a NIfTI
    volume; an NRRD or MetaImage file when its `metadata["dims"]` make a volume), else None."""
    name = str(fmt or "").split(" (")[0]
    dims = (metadata or {}).get("dims")
    volume = isinstance(dims, list) and sum(isinstance(d, int) and d >= VOLUME_SIDE for d in dims) >= 3
    if name in FORMAT_MEDICAL or (name in FORMAT_MEDICAL_VOLUME and volume):
        return _towards(None, labels, medical_labels)
    target = FORMAT_LABEL.get(name)
    return _towards(target, labels, medical_labels) if target else None


def _towards(target: str | None, labels: list[str], medical_labels: set[str], weight: float = WEIGHT) -> np.ndarray:
    prior = np.ones(len(labels))
    if target in labels:
        prior[labels.index(target)] = weight
    else:  # a label this model lacks (or medical without a label of its own): at least medical
        for i, lb in enumerate(labels):
            if lb in medical_labels:
                prior[i] = weight
    return prior


def apply_prior(probs: np.ndarray, prior: np.ndarray) -> np.ndarray:
    p = probs * prior
    return p / p.sum()
