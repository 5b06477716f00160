"""`medimg scale` as a data team meets it (helper s41_scale): Ray installed without Ray Data (`pip install ray`, no
pyarrow) read the whole list and started Ray before a traceback ended it; an empty list said "0 rows from 0
inputs" where classify says the list held no inputs."""

import os
import subprocess
import sys

import pytest
from PIL import Image

pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")

from typer.testing import CliRunner  # noqa: E402

from medimg.cli import app  # noqa: E402
from test_scale_s37 import ray_local  # noqa: E402,F401  (Ray for this module, as there)

# the CLI, with pyarrow (which `ray[data]` brings and `pip install ray` does not) missing
WITHOUT_PYARROW = "import sys; sys.modules['pyarrow'] = None; from medimg.cli import app; app(sys.argv[1:])"


def test_ray_without_ray_data_is_one_line_before_ray_starts(tmp_path, tiny_model_dir):
    Image.new("RGB", (48, 40), (200, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'a.png'}\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), GRADIO_ANALYTICS_ENABLED="False", COLUMNS="300")
    res = subprocess.run([sys.executable, "-c", WITHOUT_PYARROW, "scale", str(tmp_path / "list.txt"),
                          "--out", str(tmp_path / "out"), "--model", str(tiny_model_dir)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 2, res.stderr[-3000:]  # was 1, a traceback from Ray Data's import once Ray was up
    assert "pyarrow" in res.stderr and "install the scale extra" in res.stderr
    assert "Traceback" not in res.stderr and "ray.init" not in res.stderr and "Ray" not in res.stdout
    assert not (tmp_path / "out").exists()  # nothing made: the list was not read


@pytest.mark.parametrize("text", ["", "# nothing yet\n\n"])
def test_a_list_with_no_inputs_says_so(tmp_path, tiny_model_dir, text):
    (tmp_path / "list.txt").write_text(text)
    res = CliRunner().invoke(app, ["scale", str(tmp_path / "list.txt"), "--out", str(tmp_path / "out"),
                                   "--model", str(tiny_model_dir)])
    assert res.exit_code == 1, res.output  # as classify --inputs-from: nothing classified
    assert "list.txt held no inputs" in res.output.replace("\n", "")
    assert "0 rows" not in res.output


@pytest.mark.usefixtures("ray_local")
def test_errors_over_a_cap_and_inputs_cut_short_are_said_after_the_summary(tmp_path, tiny_model_dir):
    import numpy as np
    import pymupdf

    Image.new("RGB", (48, 40), (200, 0, 0)).save(tmp_path / "small.png")
    noise = np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "big.png")  # about 1.9 MB: over --max-input-mb 1
    doc = pymupdf.open()
    for i in range(3):  # three pages, each an image: cut short at --max-pages 1
        page = doc.new_page()
        page.insert_image(page.rect, filename=str(tmp_path / "small.png"))
    doc.save(tmp_path / "three.pdf")
    names = ["small.png", "big.png", "three.pdf"]
    (tmp_path / "list.txt").write_text("".join(f"{tmp_path / n}\n" for n in names))
    args = [str(tmp_path / "list.txt"), "--model", str(tiny_model_dir), "--max-input-mb", "1", "--max-pages", "1"]
    res = CliRunner().invoke(app, ["scale", *args, "--out", str(tmp_path / "out")])
    said = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "1 error over the max_input_bytes cap (raise it with --max-input-mb)" in said  # as classify says it
    assert "1 skipped note says an input was not read to the end" in said
    classify = CliRunner().invoke(app, ["classify", "--inputs-from", *args])
    assert "1 error over the max_input_bytes cap (raise it with --max-input-mb)" in " ".join(classify.output.split())
