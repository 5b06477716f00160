"""The Ray Data job runs the pipeline on many inputs and writes one row per image or error."""

import json
from pathlib import Path

import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")

from medimg.scale.ray_job import COLUMNS, read_inputs, run  # noqa: E402


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_job_writes_a_row_per_image_and_error(tmp_path, tiny_model_dir, ray_local):
    inputs = []
    for i, color in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (250, 10, 10)]):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (48, 40), color).save(p)
        inputs.append(str(p))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    inputs.append(str(bad))
    inputs.append(str(tmp_path / "missing.png"))
    listing = tmp_path / "inputs.txt"
    listing.write_text("# inputs\n" + "\n".join(inputs) + "\n\n")
    assert read_inputs(listing) == inputs

    out = tmp_path / "out"
    n = run(read_inputs(listing), out, fmt="jsonl", model_dir=str(tiny_model_dir), concurrency=1,
            inputs_per_batch=2)
    rows = [json.loads(line) for f in sorted(out.glob("*.json*")) for line in f.read_text().splitlines()]
    assert n == len(rows) == 6
    assert set(rows[0]) == set(COLUMNS)
    by_input = {Path(r["input"]).name: r for r in rows}
    assert by_input["img0.png"]["label"] == "xray" and by_input["img0.png"]["verdict"] == "medical"
    assert by_input["img1.png"]["label"] == "photo"
    assert by_input["img2.png"]["label"] == "graphic"
    assert by_input["broken.jpg"]["error"] and by_input["broken.jpg"]["label"] is None
    assert by_input["missing.png"]["error"]
