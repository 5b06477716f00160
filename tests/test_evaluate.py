"""Metrics on known inputs; `medimg evaluate` on a small labelled folder incl. a DICOM file."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from medimg.training.evaluate import ece, metrics
from PIL import Image
from medimg.training.evaluate import evaluate_dir

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ASSETS = Path(__file__).resolve().parents[1] / "src" / "medimg" / "model" / "assets"


def test_metrics_on_known_predictions():
    labels = ["ct", "photo", "xray"]
    probs = np.array([[0.9, 0.05, 0.05],   # ct ✓
                      [0.2, 0.1, 0.7],     # ct → xray (binary still right)
                      [0.05, 0.9, 0.05],   # photo ✓
                      [0.6, 0.3, 0.1],     # photo → ct (binary wrong)
                      [0.05, 0.05, 0.9]])  # xray ✓
    y = np.array([0, 0, 1, 1, 2])
    m = metrics(probs, y, labels, {"ct", "xray"}, threshold=0.8, names=list("abcde"))
    assert m["n"] == 5 and m["binary_accuracy"] == 0.8 and m["label_accuracy"] == 0.6
    assert m["per_label"]["ct"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_label"]["xray"]["precision"] == 0.5 and m["per_label"]["xray"]["recall"] == 1.0
    assert m["confusion"] == [[1, 0, 1], [1, 1, 0], [0, 0, 1]]
    assert [e["item"] for e in m["errors"]] == ["b", "d"]
    f1s = [0.5, 2 * 1 * 0.5 / 1.5, 2 * 0.5 / 1.5]
    assert m["modality_macro_f1"] == pytest.approx(np.mean(f1s), abs=1e-4)
    # verdicts at 0.8: p_medical = .95 .9 .1 .7 .95 → medical, medical, non-medical, uncertain, medical
    assert m["verdicts"]["uncertain"] == 1 and m["verdicts"]["decided_accuracy"] == 1.0


def test_macro_f1_is_the_mean_of_the_f1s_before_they_are_rounded():
    labels = ["ct", "mri", "photo"]
    pred = [2, 1, 2, 2, 2, 2]  # ct → photo; mri ✓, then mri → photo four times: F1 0 and 1/3
    m = metrics(np.eye(3)[pred] * 0.8 + 0.2 / 3, np.array([0, 1, 1, 1, 1, 1]), labels, {"ct", "mri"})
    assert m["modality_macro_f1"] == 0.1667  # (0 + 0.3333) / 2 would say 0.1666


def test_records_keep_whole_probabilities_so_a_score_agrees_with_the_verdict(tiny_classifier):
    """A record's probabilities are rounded only when written out: evaluate and a relabel near a boundary
    then decide as the classification did."""
    import io as _io

    from PIL import Image

    from medimg.pipeline import classify

    from medimg.sources import Blob

    buf = _io.BytesIO()
    Image.new("RGB", (70, 70), (200, 10, 10)).save(buf, "PNG")
    rec = next(iter(classify([Blob("x.png", buf.getvalue())], classifier=tiny_classifier)))
    assert rec.p_medical != round(rec.p_medical, 6) and any(v != round(v, 6) for v in rec.probs.values())
    assert max(rec.probs, key=rec.probs.get) == rec.label
    d = rec.to_dict(full=True)
    assert d["p_medical"] == round(rec.p_medical, 6) and all(d["probs"][lb] == round(v, 6)
                                                             for lb, v in rec.probs.items())


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_not():
    probs = np.tile([0.75, 0.25], (400, 1))
    y = np.array([0] * 300 + [1] * 100)
    assert ece(probs, y)[0] == pytest.approx(0.0, abs=1e-9)
    assert ece(probs, np.ones(400, int))[0] == pytest.approx(0.75)


def _dicom_file() -> Path:
    pydicom = pytest.importorskip("pydicom")
    path = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    if not path.exists():
        pytest.skip("pydicom test file CT_small.dcm absent")
    return path


@pytest.mark.skipif(not DATA.is_dir(), reason=f"corpus {DATA} absent")
@pytest.mark.skipif(not (ASSETS / "labels.json").exists(), reason="no shipped model yet")
def test_evaluate_command_on_a_labelled_folder(tmp_path):
    from typer.testing import CliRunner

    from medimg.cli import app

    root = tmp_path / "eval"
    n_files = 0
    for label, source in (("xray", "medical-mnist-hand"), ("photo", "imagenet-sample-images"),
                          ("document", "texlive-latex-base-doc-pages")):
        dest = root / label / "nested"
        dest.mkdir(parents=True)
        for f in sorted((DATA / label / source).iterdir())[:3]:
            shutil.copy(f, dest / f.name)
            n_files += 1
    (root / "ct").mkdir()
    shutil.copy(_dicom_file(), root / "ct" / "slice.dcm")  # a DICOM counts as its image
    (root / "photo" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    res = CliRunner().invoke(app, ["evaluate", str(root), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout.strip().splitlines()[-1])
    assert rep["n"] == n_files + 1
    assert len(rep["read_errors"]) == 1 and "broken.jpg" in rep["read_errors"][0]["item"]
    assert set(rep["labels_present"]) == {"ct", "xray", "photo", "document"}
    for key in ("binary_accuracy", "modality_macro_f1", "ece", "per_label", "confusion", "errors"):
        assert key in rep
    assert rep["per_label"]["ct"]["support"] == 1 and rep["per_label"]["xray"]["support"] == 3
    assert sum(map(sum, rep["confusion"])) == rep["n"]
    assert 0 <= rep["binary_accuracy"] <= 1 and 0 <= rep["ece"] <= 1
    res = CliRunner().invoke(app, ["evaluate", str(root)])  # the text report names what it could not read
    assert res.exit_code == 0 and "read errors 1" in res.stdout
    assert f"  read errors: {root / 'photo' / 'broken.jpg'}: " in res.stdout


def test_evaluate_rejects_a_folder_without_labels(tmp_path):
    from typer.testing import CliRunner

    from medimg.cli import app

    (tmp_path / "notalabel").mkdir()
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--json"])
    assert res.exit_code != 0


def test_evaluate_scores_the_files_and_fetches_nothing(tmp_path, tiny_classifier):
    """A scraped page saved as .jpg in a label folder: its remote images are read errors, not fetched (an
    offline or firewalled machine would wait on each) and not scored under the folder's label."""
    from PIL import Image

    from medimg.training.evaluate import evaluate_dir

    (tmp_path / "xray").mkdir()
    Image.new("RGB", (48, 40), (255, 0, 0)).save(tmp_path / "xray" / "a.png")
    (tmp_path / "xray" / "scraped.jpg").write_text('<html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    rep = evaluate_dir(tmp_path, tiny_classifier)
    assert rep["n"] == 1
    (err,) = rep["read_errors"]
    assert "scraped.jpg" in err["item"] and "offline" in err["error"], err


def test_ece_counts_a_confidence_of_exactly_one():
    """A softmax of large logits gives a confidence of exactly 1.0; it falls in the top bin (lo, 1], so a model
    that is sure and wrong has an ECE of 1, not 0, and every image is in some bin."""
    probs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    total, table = ece(probs, np.array([1, 1, 0]))
    assert total == pytest.approx(1.0)
    assert sum(row["n"] for row in table) == 3 and table[-1]["hi"] == 1.0


def test_binary_accuracy_counts_p_medical_of_exactly_one_half_as_medical():
    """Binary accuracy decides medical by p_medical ≥ 0.5 (metrics' docstring), the tie included."""
    labels = ["ct", "photo"]
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.25, 0.75]])
    m = metrics(probs, np.array([0, 0, 1]), labels, {"ct"})
    assert m["binary_accuracy"] == 1.0
    m = metrics(probs, np.array([1, 1, 1]), labels, {"ct"})
    assert m["binary_accuracy"] == round(1 / 3, 4)


def test_the_worst_source_is_the_one_with_the_lowest_accuracy():
    """Per source: 'scanner' all right, 'ward' every label wrong though the binary call right, 'phone' half
    its labels and half its binary calls wrong. The worst by label is 'ward', the worst by binary 'phone'."""
    labels = ["ct", "photo", "xray"]
    probs = np.array([[0.9, 0.05, 0.05], [0.05, 0.05, 0.9],    # scanner: ct ✓, xray ✓
                      [0.2, 0.1, 0.7], [0.2, 0.1, 0.7],        # ward: ct → xray twice (still medical)
                      [0.6, 0.3, 0.1], [0.05, 0.9, 0.05]])     # phone: photo → ct, photo ✓
    y = np.array([0, 2, 0, 0, 1, 1])
    m = metrics(probs, y, labels, {"ct", "xray"}, sources=["scanner"] * 2 + ["ward"] * 2 + ["phone"] * 2)
    assert m["per_source"]["scanner"] == {"n": 2, "label_accuracy": 1.0, "binary_accuracy": 1.0}
    assert m["worst_source"] == {"source": "ward", "n": 2, "label_accuracy": 0.0, "binary_accuracy": 1.0}
    assert m["worst_source_binary"] == {"source": "phone", "n": 2, "label_accuracy": 0.5, "binary_accuracy": 0.5}


def test_label_folders_are_read_whatever_their_case(tmp_path, tiny_classifier):
    """Folders named CT/, Xray/ are the labels ct and xray (they were refused as "not a label"); a name that is
    no label in any case is still refused."""
    from PIL import Image

    from medimg.training.evaluate import evaluate_dir

    for folder, colour in (("Xray", (255, 0, 0)), ("CT", (0, 255, 0)), ("ct", (0, 200, 0))):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (48, 40), colour).save(tmp_path / folder / "a.png")
    (tmp_path / "CT" / "Covid").mkdir()
    Image.new("RGB", (48, 40), (0, 90, 0)).save(tmp_path / "CT" / "Covid" / "b.png")
    rep = evaluate_dir(tmp_path, tiny_classifier)
    assert rep["n"] == 4 and rep["labels_present"] == ["ct", "xray"]
    assert rep["per_label"]["ct"]["support"] == 3 and rep["per_label"]["xray"]["support"] == 1
    assert {s: m["n"] for s, m in rep["per_source"].items()} == {"ct": 2, "ct/Covid": 1, "xray": 1}  # by label
    (tmp_path / "Scans").mkdir()
    with pytest.raises(ValueError, match="folder 'Scans' is not a label"):
        evaluate_dir(tmp_path, tiny_classifier)


def test_decided_accuracy_is_over_the_decided_verdicts_only():
    """An uncertain verdict is neither right nor wrong: decided_accuracy counts the decided ones alone."""
    probs = np.array([[0.95, 0.05],   # ct: medical, right
                      [0.7, 0.3],     # ct: p_medical 0.7 at 0.8, uncertain
                      [0.05, 0.95],   # photo: non-medical, right
                      [0.9, 0.1]])    # photo: medical, wrong
    m = metrics(probs, np.array([0, 0, 1, 1]), ["ct", "photo"], {"ct"}, threshold=0.8)
    assert m["verdicts"] == {"decided": 3, "uncertain": 1, "decided_accuracy": 0.6667}


def test_a_label_of_the_corpus_own_listed_as_medical_counts_as_medical_in_the_binary_scores(tmp_path, tiny_classifier):
    """A folder of a label the model does not know, said to be medical in label_groups.csv beside it, is scored
    as medical: an image the model calls medical is a right binary call, though its label is always wrong."""
    (tmp_path / "thermal").mkdir()
    Image.new("RGB", (40, 40), (140, 120, 120)).save(tmp_path / "thermal" / "a.png")  # tiny model: p_medical 0.92
    (tmp_path / "label_groups.csv").write_text("label,group\nthermal,medical\n")
    rep = evaluate_dir(tmp_path, classifier=tiny_classifier)
    assert rep["labels_unknown_to_model"] == ["thermal"] and rep["n"] == 1
    assert rep["label_accuracy"] == 0.0 and rep["binary_accuracy"] == 1.0


def test_evaluate_leaves_out_what_train_leaves_out_and_says_the_threshold_and_worst_source(tmp_path, tiny_classifier,
                                                                                           monkeypatch):
    """A corpus-shaped folder with its own exclude.csv: the listed files are not scored (train leaves them out
    too) and are named; exclude.csv and label_groups.csv are settings, not unlabelled data; each file's source
    is the folder under its label; the text report shows the threshold's verdicts, the worst source, and says
    when the list of misread images goes on past its first 20."""
    from PIL import Image
    from typer.testing import CliRunner

    import medimg.cli
    from medimg.cli import app
    from medimg.training.evaluate import evaluate_dir

    for label, source, n in (("xray", "s1", 2), ("xray", "s2", 1), ("thermal", "t1", 22)):
        (tmp_path / label / source).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (48, 40), (i * 9, 200 if label == "xray" else 30, 90)).save(
                tmp_path / label / source / f"{i}.png")
    (tmp_path / "photo").mkdir()
    Image.new("RGB", (48, 40)).save(tmp_path / "photo" / "loose.png")  # right in the label folder
    (tmp_path / "exclude.csv").write_text("path,reason\nxray/s1/1.png,a chest photo\n")
    (tmp_path / "label_groups.csv").write_text("label,group\nthermal,medical\n")  # never predicted: 22 misread
    (tmp_path / "notes.txt").write_text("who made this")
    rep = evaluate_dir(tmp_path, tiny_classifier)
    assert rep["n"] == 25 and rep["excluded"] == [{"item": "xray/s1/1.png", "why": "a chest photo"}]
    assert not any("xray/s1/1.png" in str(e["item"]) for e in rep["errors"]) and rep["n_errors"] >= 22
    assert rep["unlabelled_files"] == ["notes.txt"]
    assert {s: m["n"] for s, m in rep["per_source"].items()} == {"photo": 1, "thermal/t1": 22, "xray/s1": 1,
                                                                  "xray/s2": 1}
    worst = rep["worst_source"]
    assert worst["label_accuracy"] == min(m["label_accuracy"] for m in rep["per_source"].values()) == 0.0
    monkeypatch.setattr(medimg.cli, "load_model", lambda _: tiny_classifier)
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--threshold", "0.99"])
    assert res.exit_code == 0, res.output
    v = evaluate_dir(tmp_path, tiny_classifier, threshold=0.99)["verdicts"]
    said = res.stdout
    assert f"at threshold 0.99: {v['decided']} decided" in said and f"{v['uncertain']} uncertain" in said, said
    assert f"worst source {worst['source']}: label accuracy 0.0" in said
    assert "1 files left out as the exclude lists say (as train does): xray/s1/1.png" in said
    assert f"and {rep['n_errors'] - 20} more misread (--json lists {rep['n_errors']})" in said


def test_evaluate_reads_files_with_classifys_limits(tmp_path, tiny_classifier, monkeypatch):
    """`evaluate` takes classify's caps and --workers: at --max-pixels 100 every 48×40 image is a read error,
    and --all-frames scores each frame of a GIF."""
    from PIL import Image
    from typer.testing import CliRunner

    import medimg.cli
    from medimg.cli import app

    (tmp_path / "xray").mkdir()
    frames = [Image.new("RGB", (48, 40), (i * 80, 9, 9)) for i in range(3)]
    frames[0].save(tmp_path / "xray" / "cine.gif", save_all=True, append_images=frames[1:])
    monkeypatch.setattr(medimg.cli, "load_model", lambda _: tiny_classifier)
    runs = {}
    options = {"plain": [], "all": ["--all-frames", "--workers", "1"], "capped": ["--max-pixels", "100"]}
    for name, extra in options.items():
        res = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--json", *extra])
        runs[name] = (res.exit_code, json.loads(res.stdout.strip().splitlines()[-1]))
    assert runs["plain"][0] == 0 and runs["plain"][1]["n"] == 1
    assert runs["all"][0] == 0 and runs["all"][1]["n"] == 3
    code, rep = runs["capped"]
    assert code == 1 and rep["n"] == 0 and "max_pixels" in rep["read_errors"][0]["error"], rep["read_errors"]


def test_the_text_report_names_no_worst_source_when_there_is_only_one(tmp_path, tiny_classifier, monkeypatch):
    """with one source (one label folder holding one source folder) "worst source" says nothing new:
    the line is printed only when there are sources to compare."""
    from PIL import Image
    from typer.testing import CliRunner

    import medimg.cli
    from medimg.cli import app
    from medimg.training.evaluate import evaluate_dir

    (tmp_path / "xray" / "s1").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (48, 40), (i * 9, 200, 90)).save(tmp_path / "xray" / "s1" / f"{i}.png")
    rep = evaluate_dir(tmp_path, tiny_classifier)
    assert list(rep["per_source"]) == ["xray/s1"] and rep["worst_source"]["source"] == "xray/s1"
    monkeypatch.setattr(medimg.cli, "load_model", lambda _: tiny_classifier)
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "label accuracy" in res.stdout and "worst source" not in res.stdout, res.stdout


def test_an_exclude_csv_that_is_not_the_corpus_list_is_an_unlabelled_file(tmp_path, tiny_classifier):
    """only an exclude.csv with the header path,reason is the corpus's list (train reads no other): one with
    other columns leaves nothing out and is named among the unlabelled files, as any stray file is."""
    from PIL import Image

    from medimg.training.evaluate import evaluate_dir

    (tmp_path / "xray").mkdir()
    for i in range(2):
        Image.new("RGB", (48, 40), (i * 9, 200, 90)).save(tmp_path / "xray" / f"{i}.png")
    (tmp_path / "exclude.csv").write_text("path,comment\nxray/1.png,looks odd\n")
    rep = evaluate_dir(tmp_path, tiny_classifier)
    assert rep["n"] == 2 and rep["excluded"] == []
    assert rep["unlabelled_files"] == ["exclude.csv"]


@pytest.mark.parametrize("n, more", [(3, False), (4, True)])
def test_the_text_report_names_the_first_three_files_left_out_and_says_when_there_are_more(
        tmp_path, tiny_classifier, monkeypatch, n, more):
    """three files left out are all named, with no "…"; a fourth is the "…"."""
    from PIL import Image
    from typer.testing import CliRunner

    import medimg.cli
    from medimg.cli import app

    (tmp_path / "xray" / "s1").mkdir(parents=True)
    for i in range(n + 1):
        Image.new("RGB", (48, 40), (i * 9, 200, 90)).save(tmp_path / "xray" / "s1" / f"{i}.png")
    (tmp_path / "exclude.csv").write_text("path,reason\n" + "".join(f"xray/s1/{i}.png,odd\n" for i in range(n)))
    monkeypatch.setattr(medimg.cli, "load_model", lambda _: tiny_classifier)
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path)])
    assert res.exit_code == 0, res.output
    line = next(line for line in res.stdout.splitlines() if "left out as the exclude lists say" in line)
    assert line.startswith(f"{n} files left out") and "xray/s1/0.png, xray/s1/1.png, xray/s1/2.png" in line, line
    assert line.endswith(", …") == more, line


def test_evaluate_reads_every_label_folder_in_one_run(tmp_path, tiny_classifier, monkeypatch):
    """One pipeline run over all the label folders, so its reading threads go on from one folder to the next
    (they waited for each folder's last files before), with each image still scored under its own folder."""
    from PIL import Image

    import medimg.pipeline
    from medimg.training.evaluate import evaluate_dir

    for label, n in (("xray", 3), ("photo", 2), ("ct", 1)):
        (tmp_path / label / "src").mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (48, 40), (i * 40, 90, 9)).save(tmp_path / label / "src" / f"{i}.png")
    runs = []
    real = medimg.pipeline.classify
    monkeypatch.setattr(medimg.pipeline, "classify", lambda inputs, **kw: runs.append(list(inputs)) or real(
        runs[-1], **kw))
    rep = evaluate_dir(tmp_path, tiny_classifier, workers=2)
    assert [sorted(Path(p).name for p in run) for run in runs] == [["ct", "photo", "xray"]]
    assert {lb: m["support"] for lb, m in rep["per_label"].items() if m["support"]} == {"xray": 3, "photo": 2, "ct": 1}
    assert {s: m["n"] for s, m in rep["per_source"].items()} == {"xray/src": 3, "photo/src": 2, "ct/src": 1}


def test_a_label_folder_that_links_to_another_is_read_once(tmp_path, tiny_classifier):
    """Photo/ a link to photo/ (made for a tool that wants the other case): its images are scored once, not
    twice under the same label, and the link is named among the skipped."""
    (tmp_path / "photo").mkdir()
    for i in range(2):
        Image.new("RGB", (48, 40), (i * 90, 30, 90)).save(tmp_path / "photo" / f"{i}.png")
    (tmp_path / "Photo").symlink_to("photo")
    rep = evaluate_dir(tmp_path, tiny_classifier)
    assert rep["n"] == 2 and rep["per_label"]["photo"]["support"] == 2
    assert rep["skipped"] == [{"item": str(tmp_path / "Photo"),
                               "why": "link to the folder photo read already; not read again"}]


def test_an_image_reached_through_links_below_the_label_folders_is_scored_once_where_it_lies(tmp_path, tiny_classifier):
    """ct/s1 a link to xray/s1 scored its images under ct and xray; a file linked beside itself (photo/b.png to
    photo/p/a.png) twice under photo. Each is scored once: where it lies for a link into another label folder,
    the first way read otherwise; a zip's members and a file's frames count by their file's real path."""
    (tmp_path / "xray" / "s1").mkdir(parents=True)
    (tmp_path / "photo" / "p").mkdir(parents=True)
    (tmp_path / "ct").mkdir()
    for i in range(3):
        Image.new("L", (48, 40), i * 60).save(tmp_path / "xray" / "s1" / f"{i}.png")
    Image.new("RGB", (48, 40), (200, 30, 30)).save(tmp_path / "photo" / "p" / "a.png")
    buf = io.BytesIO()
    Image.new("RGB", (48, 40), (30, 30, 200)).save(buf, "PNG")
    with zipfile.ZipFile(tmp_path / "photo" / "p" / "z.zip", "w") as z:
        z.writestr("in/b.png", buf.getvalue())
    (tmp_path / "ct" / "s1").symlink_to(tmp_path / "xray" / "s1")
    (tmp_path / "ct" / "z.zip").symlink_to(tmp_path / "photo" / "p" / "z.zip")
    (tmp_path / "photo" / "b.png").symlink_to(tmp_path / "photo" / "p" / "a.png")
    rep = evaluate_dir(tmp_path, tiny_classifier)
    assert rep["n"] == 5 and rep["labels_present"] == ["photo", "xray"]
    assert {lb: m["support"] for lb, m in rep["per_label"].items() if m["support"]} == {"xray": 3, "photo": 2}
    notes = {s["item"]: s["why"] for s in rep["skipped"]}
    assert notes == {**{str(tmp_path / "ct" / "s1" / f"{i}.png"): "a link into xray/; scored there" for i in range(3)},
                     str(tmp_path / "ct" / "z.zip:in/b.png"): "a link into photo/; scored there",
                     str(tmp_path / "photo" / "p" / "a.png"): f"the same file as {tmp_path / 'photo' / 'b.png'}; "
                                                              "scored once"}


def test_a_label_folder_linked_into_another_scores_its_images_under_itself_and_a_files_images_each(
        tmp_path, tiny_classifier):
    """ct is a link to xray/s1: its images are scored under ct, the innermost label folder, not xray; xray/s10
    (a name that begins like s1) is not inside that link; a PDF's two images are two records of one file,
    both scored (mutation round s32_mut2)."""
    for s in ("s1", "s10"):
        (tmp_path / "xray" / s).mkdir(parents=True)
    Image.new("L", (48, 40), 30).save(tmp_path / "xray" / "s1" / "0.png")
    Image.new("L", (48, 40), 90).save(tmp_path / "xray" / "s10" / "1.png")
    pages = [Image.new("RGB", (64, 48), (i * 100, 40, 40)) for i in range(2)]
    pages[0].save(tmp_path / "xray" / "s10" / "two.pdf", "PDF", save_all=True, append_images=pages[1:])
    (tmp_path / "ct").symlink_to(tmp_path / "xray" / "s1")
    rep = evaluate_dir(tmp_path, tiny_classifier)
    assert {lb: m["support"] for lb, m in rep["per_label"].items() if m["support"]} == {"ct": 1, "xray": 3}, rep
    assert {s["item"]: s["why"] for s in rep["skipped"]} == {
        str(tmp_path / "xray" / "s1" / "0.png"): "a link into ct/; scored there"}


def test_a_link_beside_the_label_folders_that_leads_nowhere_is_a_read_error(tmp_path, tiny_classifier):
    """xray/ a link to a drive not mounted is neither a folder nor a file: it was passed over without a word,
    and its images were missing from the scores unseen."""
    (tmp_path / "photo").mkdir()
    Image.new("RGB", (48, 40), (9, 30, 90)).save(tmp_path / "photo" / "a.png")
    (tmp_path / "xray").symlink_to(tmp_path / "unmounted" / "xray")
    rep = evaluate_dir(tmp_path, tiny_classifier)
    assert rep["n"] == 1
    assert rep["read_errors"] == [{"item": str(tmp_path / "xray"),
                                   "error": f"link to {tmp_path / 'unmounted' / 'xray'}, which does not exist"}]


def test_a_skipped_file_is_not_said_to_be_skipped_twice(tmp_path, tiny_classifier, monkeypatch):
    """The pipeline's note "skipped: empty file" sits in the skipped list: the report said
    "skipped: …/empty.jpg: skipped: empty file"."""
    from typer.testing import CliRunner

    import medimg.cli
    from medimg.cli import app

    (tmp_path / "photo").mkdir()
    Image.new("RGB", (48, 40), (9, 30, 90)).save(tmp_path / "photo" / "a.png")
    (tmp_path / "photo" / "empty.jpg").write_bytes(b"")
    (tmp_path / "photo" / "notes.txt").write_text("who made this")
    rep = evaluate_dir(tmp_path, tiny_classifier)
    assert [s["why"] for s in rep["skipped"]] == ["empty file", "not an image or a supported container"]
    monkeypatch.setattr(medimg.cli, "load_model", lambda _: tiny_classifier)
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path)])
    assert f"  skipped: {tmp_path / 'photo' / 'empty.jpg'}: empty file\n" in res.stdout, res.stdout


def test_a_label_folder_given_itself_is_told_to_give_the_folder_that_holds_it(tmp_path, tiny_classifier):
    """evaluate data/xray (images in it, or in its source folders) is refused, and the message says to give
    data; a folder that happens to be named after a label but holds label folders gets no such hint."""
    (tmp_path / "xray" / "s1").mkdir(parents=True)
    Image.new("RGB", (48, 40), (9, 30, 90)).save(tmp_path / "xray" / "s1" / "a.png")
    hint = f"is itself named after the label xray: evaluate the folder that holds it ({tmp_path})"
    with pytest.raises(ValueError, match="folder 's1' is not a label") as err:
        evaluate_dir(tmp_path / "xray", tiny_classifier)
    assert hint in str(err.value)
    shutil.move(tmp_path / "xray" / "s1" / "a.png", tmp_path / "xray" / "a.png")
    (tmp_path / "xray" / "s1").rmdir()
    with pytest.raises(ValueError, match="has no <label>/ folders") as err:
        evaluate_dir(tmp_path / "xray", tiny_classifier)
    assert hint in str(err.value)
    (tmp_path / "photo" / "xray").mkdir(parents=True)
    (tmp_path / "photo" / "Scans").mkdir()
    with pytest.raises(ValueError, match="folder 'Scans' is not a label") as err:
        evaluate_dir(tmp_path / "photo", tiny_classifier)
    assert "itself named" not in str(err.value)
