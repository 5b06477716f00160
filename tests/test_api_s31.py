"""The Python API as an integrator calls it: arguments that are wrong in ways a data pipeline makes them."""

import io
import shutil

import pytest
from PIL import Image

from medimg.model import Classifier
from medimg.pipeline import Record, classify
from medimg.sources import Blob, Limits, open_input


def png(color=(255, 0, 0), size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def test_relabel_without_a_threshold_says_it_needs_one():
    """relabel(None) failed inside verdict_for with "unsupported operand type(s) for -"."""
    rec = Record(input="x", locator="", p_medical=0.7)
    with pytest.raises(TypeError, match="relabel needs a threshold between 0.5 and 1, not None"):
        rec.relabel(None)
    assert rec.relabel(0.6) == "medical"


def test_a_table_given_as_the_inputs_asks_for_its_column(tiny_classifier):
    """A DataFrame iterates its column names: classify(df) gave one "file not found" record per column."""
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"path": ["a.png", "b.png"]})
    with pytest.raises(TypeError, match=r"the inputs are a table: give its column"):
        classify(df, classifier=tiny_classifier)
    records = list(classify(df["path"], classifier=tiny_classifier))  # its column is inputs
    assert [r.input for r in records] == ["a.png", "b.png"]


def test_open_input_checks_its_context_when_called():
    """ctx=Limits() passed, and failed only at the first item, with "'Limits' object has no attribute 'limits'"."""
    with pytest.raises(TypeError, match=r"ctx must be a Context or None \(limits go in `limits`\)"):
        open_input(Blob("a.png", png()), ctx=Limits())  # no next()


def test_predict_says_a_batch_size_of_the_wrong_kind_is_a_type_error(tiny_classifier):
    """As classify does: batch_size="2" was a ValueError from predict and a TypeError from classify."""
    img = Image.new("RGB", (8, 8))
    for wrong in ("2", 2.0, None, True):
        with pytest.raises(TypeError, match="batch_size must be a whole number of at least 1"):
            tiny_classifier.predict(img, batch_size=wrong)
    with pytest.raises(ValueError, match="batch_size must be a whole number of at least 1"):
        tiny_classifier.predict(img, batch_size=0)


@pytest.mark.parametrize("text, says", [
    ("{}", "gives no labels, medical_labels, input_size"),
    ('{"labels": ["xray"], "input_size": 32}', "gives no medical_labels"),
    ("[1, 2]", "gives no labels"),
    ("not json", "it is not JSON"),
])
def test_a_model_folder_whose_labels_json_is_not_a_models_is_a_clear_value_error(tiny_model_dir, tmp_path, text, says):
    """classify(classifier=folder) raised KeyError: 'labels' (or AttributeError for a list)."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "labels.json").write_text(text)
    with pytest.raises(ValueError, match=says):
        classify([Blob("a.png", png())], classifier=folder)
    with pytest.raises(ValueError, match="is not a model's labels.json"):
        Classifier.load(folder)


def test_a_model_folder_of_the_wrong_type_and_too_many_workers_are_refused_up_front(tiny_classifier):
    """Classifier.load(3) failed inside os.fspath; workers=10**6 would start a million threads. Both are refused
    with what they take, before anything runs; 256 workers (the most) run."""
    with pytest.raises(TypeError, match=r"model_dir must be a folder \(str or Path\), a shipped model's name, or None"):
        Classifier.load(3)
    with pytest.raises(ValueError, match="workers must be at most 256, not 1000000"):
        classify([Blob("a.png", png())], classifier=tiny_classifier, workers=10**6)
    records = list(classify([Blob("a.png", png())], classifier=tiny_classifier, workers=256))
    assert [r.input for r in records] == ["a.png"] and records[0].ok
    with pytest.raises(ValueError, match="workers must be at most 256, not 257"):  # the first too many
        classify([Blob("a.png", png())], classifier=tiny_classifier, workers=257)
