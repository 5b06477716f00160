"""Packaging (s42): what classifying one image imports (the floors of pymupdf and Playwright it found are among
test_packaging_s39's)."""
import subprocess
import sys


def test_classifying_a_png_loads_no_server_training_or_browser_library(tmp_path):
    """Guard: `import medimg` and classifying one image stay free of torch, gradio, ray, fastapi and playwright."""
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "red.png")
    heavy = ["torch", "gradio", "ray", "fastapi", "uvicorn", "playwright", "pandas", "pyarrow", "matplotlib"]
    code = (f"import sys, medimg; rows = list(medimg.classify([{str(tmp_path / 'red.png')!r}])); "
            f"assert rows and rows[0].error is None, rows; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"loaded to classify one PNG: {out.stdout.strip()}"
