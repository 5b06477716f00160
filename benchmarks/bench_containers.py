"""Speed of inputs holding many images or files, against the bare libraries reading the same in the same run.

    .venv/bin/python benchmarks/bench_containers.py [--repeat R] [--only NAME ...]

CPU time (`time.process_time`, all threads; the median of R runs), so a machine shared with other work still gives
comparable figures. Ratios > 1 mean medimg is slower than the baseline, which only reads and decodes:
- `files`: 5,000 files of one folder given one by one (as `find | medimg classify` gives them): 800 a.mhd/a.raw
  pairs, 400 h.mhd naming d.raw (a header of another stem), 3,800 .raw/.img/.dat without a header; against reading
  each file whole;
- `zip`: a zip of 3,000 small PNGs; against zipfile reading and Pillow decoding each member;
- `deck`: a 300-slide .pptx showing 150 pictures 1,200 times, a third of them cropped (`a:srcRect`); against the
  same reading and decoding of its pictures;
- `pdf`: 2,500 images on 100 pages, all under one ICC profile object; against PyMuPDF's `extract_image` of each;
- `page`: a static page of 3,000 `<picture>` of 4 `<source media>` each; against lexbor's parse and select;
- `dicom`: an Enhanced MR of 20 time points × 40 slices of 128²; against pydicom reading it and its middle frame;
- `plate`: a 96-well OME-TIFF (96 images); against tifffile reading every image;
- `frames`: a GIF of 300 different 256² frames with `all_frames` (each frame's pixels hashed to find repeats,
  sources/repeats.py); against Pillow decoding every frame to RGB;
- `svg`: a 10 MB drawing without a picture (only looked through for `data:`); against reading its bytes in
  lower case; `svgpics`: the same with 5 embedded PNGs (parsed with lexbor after html_cost's nesting check);
  against lexbor's parse alone;
- `saved`: a 30 MB Chrome MHTML of a page and its 30 PNGs; against the e-mail parser reading its parts and
  Pillow decoding the PNGs.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from timing import cpu

from medimg.sources import Blob, Limits, open_input, open_inputs

OFFICE_NS = ('xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
             'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
             'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"')
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def png(seed: int, side: int = 48, channels: int = 1) -> bytes:
    shape = (side, side) if channels == 1 else (side, side, channels)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, shape, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def decode_all(datas) -> None:
    for data in datas:
        with Image.open(io.BytesIO(data)) as im:
            im.load()


def mhd(data_name: str) -> bytes:
    return (f"ObjectType = Image\nNDims = 2\nDimSize = 64 64\nElementType = MET_UCHAR\n"
            f"ElementDataFile = {data_name}\n").encode()


def folder(tmp: Path) -> list[str]:
    rng = np.random.default_rng(0)
    files = {}
    for k in range(800):
        files[f"a{k:04d}.mhd"], files[f"a{k:04d}.raw"] = mhd(f"a{k:04d}.raw"), rng.bytes(4096)
    for k in range(400):
        files[f"h{k:04d}.mhd"], files[f"d{k:04d}.raw"] = mhd(f"d{k:04d}.raw"), rng.bytes(4096)
    for k in range(3800):
        files[f"x{k:04d}{('.raw', '.img', '.dat')[k % 3]}"] = rng.bytes(4096)
    (tmp / "files").mkdir()
    for name, data in files.items():
        (tmp / "files" / name).write_bytes(data)
    return sorted(str(p) for p in (tmp / "files").iterdir())


def rels(*targets: tuple[str, str, str]) -> bytes:
    out = "".join(f'<Relationship Id="{rid}" Type="{RELS}/{kind}" Target="{target}"/>' for rid, kind, target in targets)
    return (f'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            f'relationships">{out}</Relationships>').encode()


def deck() -> bytes:
    media = {f"image{k}.png": png(k, 64, 3) for k in range(150)}
    files = {"[Content_Types].xml": b"<Types/>",
             "_rels/.rels": rels(("rId1", "officeDocument", "ppt/presentation.xml")),
             "ppt/presentation.xml": (f"<p:presentation {OFFICE_NS}><p:sldIdLst>" + "".join(
                 f'<p:sldId id="{256 + k}" r:id="rId{10 + k}"/>' for k in range(300)) + "</p:sldIdLst></p:presentation>"
                                      ).encode(),
             "ppt/_rels/presentation.xml.rels": rels(*[(f"rId{10 + k}", "slide", f"slides/slide{k + 1}.xml")
                                                       for k in range(300)])}
    for s in range(300):
        crops = [' l="10000"' if (s + j) % 3 == 0 else "" for j in range(4)]
        pics = "".join(f'<p:pic><p:blipFill><a:blip r:embed="rId{j + 2}"/><a:srcRect{crops[j]}/>'
                       '<a:stretch><a:fillRect/></a:stretch></p:blipFill></p:pic>' for j in range(4))
        files[f"ppt/slides/slide{s + 1}.xml"] = (f'<?xml version="1.0"?><p:sld {OFFICE_NS}><p:cSld><p:spTree>{pics}'
                                                 '</p:spTree></p:cSld></p:sld>').encode()
        files[f"ppt/slides/_rels/slide{s + 1}.xml.rels"] = rels(*[
            (f"rId{j + 2}", "image", f"../media/image{(s * 4 + j) % 150}.png") for j in range(4)])
    files.update({f"ppt/media/{name}": data for name, data in media.items()})
    return zipped(files)


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def members(data: bytes, prefix: str = "") -> list[bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [zf.read(n) for n in zf.namelist() if n.startswith(prefix)]


def pdf() -> bytes:
    import pymupdf
    from PIL import ImageCms

    doc = pymupdf.open()
    xrefs = set()
    for p in range(100):
        page = doc.new_page(width=600, height=800)
        for j in range(25):
            box = pymupdf.Rect(20 + j % 5 * 110, 20 + j // 5 * 150, 120 + j % 5 * 110, 160 + j // 5 * 150)
            xrefs.add(page.insert_image(box, stream=png(p * 25 + j, 80, 3)))
    profile = doc.get_new_xref()
    doc.update_object(profile, "<< /N 3 >>")
    doc.update_stream(profile, ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    for xref in xrefs:
        doc.xref_set_key(xref, "ColorSpace", f"[/ICCBased {profile} 0 R]")
    return doc.tobytes()


def pdf_bare(data: bytes) -> None:
    import pymupdf

    doc = pymupdf.open(stream=data, filetype="pdf")
    for xref in {i[0] for page in doc for i in page.get_images(full=True)}:
        doc.extract_image(xref)


def page() -> str:
    queries = ["(min-width: 1200px)", "(max-width: 600px) and (orientation: portrait)", "(prefers-color-scheme: dark)",
               "(min-resolution: 2dppx)", "screen and (min-width: 40em)", "(hover: hover) and (pointer: fine)",
               "(width >= 800px)", "not print and (min-aspect-ratio: 16/9)"]
    body = "".join("<picture>" + "".join(f'<source media="{queries[(k + j) % 8]}" srcset="/i/{k}-{j}.jpg 1x, '
                                         f'/i/{k}-{j}@2x.jpg 2x">' for j in range(4))
                   + f'<img src="/i/{k}.jpg" alt="x"></picture>' for k in range(3000))
    return f"<html><body>{body}</body></html>"


def page_bare(html: str) -> None:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    for node in tree.css("picture source, picture img"):
        node.attributes


def enhanced_mr() -> bytes:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    order = [(t, z) for t in range(20) for z in range(40)]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Modality, ds.Rows, ds.Columns, ds.NumberOfFrames = "MR", 128, 128, len(order)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    groups = []
    for t, z in order:
        content, position = Dataset(), Dataset()
        content.StackID, content.InStackPositionNumber, content.TemporalPositionIndex = "1", z + 1, t + 1
        position.ImagePositionPatient = [-100.0, -100.0, 3.0 * z]
        group = Dataset()
        group.FrameContentSequence, group.PlanePositionSequence = Sequence([content]), Sequence([position])
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    ds.PixelData = np.concatenate([np.full(128 * 128, 100 * t + z, np.uint16) for t, z in order]).tobytes()
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def dicom_bare(data: bytes) -> None:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    n, size = int(ds.NumberOfFrames), ds.Rows * ds.Columns * 2
    np.frombuffer(ds.PixelData, np.uint16, size // 2, n // 2 * size).reshape(ds.Rows, ds.Columns)


def plate() -> bytes:
    import tifffile

    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, ome=True) as tw:
        for n in range(96):
            well = np.random.default_rng(n).integers(90, 110, (2, 96, 128), dtype=np.uint16)
            well[0, 10:30, 10:30 + 20 * (n % 5)] = 3000
            tw.write(well, photometric="minisblack", metadata={"axes": "CYX", "Name": f"Well {n}"})
    return buf.getvalue()


def plate_bare(data: bytes) -> None:
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        for series in tif.series:
            series.asarray()


def gif(n: int = 300) -> bytes:
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (256, 256, 3), np.uint8)).quantize(64) for _ in range(n)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=40)
    return out.getvalue()


def gif_bare(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as im:
        for k in range(im.n_frames):
            im.seek(k)
            im.convert("RGB")


def svg(pictures: int, size: int = 10 * 2**20) -> bytes:
    head = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">\n'
    import base64

    pics = "".join(f'<image width="300" height="200" xlink:href="data:image/png;base64,'
                   f'{base64.b64encode(png(k, 300, 3)).decode()}"/>\n' for k in range(pictures))
    path = "".join(f'<path d="M{k % 500} {k % 300} L{k * 7 % 500} {k * 3 % 300}" stroke="#123"/>\n'
                   for k in range(size // 40))
    return (head + pics + path[:size]).rsplit("\n", 1)[0].encode() + b"\n</svg>\n"


def svg_bare(data: bytes) -> None:
    from selectolax.lexbor import LexborHTMLParser

    LexborHTMLParser(data.decode("utf-8", "replace")).css("image")


def mhtml(n: int = 30) -> bytes:
    import base64

    b = "----MultipartBoundary--bench"
    out = [f'From: <Saved by Blink>\r\nSnapshot-Content-Location: https://h.test/\r\nMIME-Version: 1.0\r\n'
           f'Content-Type: multipart/related;\r\n\ttype="text/html";\r\n\tboundary="{b}"\r\n\r\n',
           f'--{b}\r\nContent-Type: text/html\r\nContent-Location: https://h.test/\r\n\r\n<html><body>'
           + "".join(f'<img src="https://h.test/{k}.png">' for k in range(n)) + "</body></html>\r\n"]
    for k in range(n):
        data = base64.encodebytes(png(k, 500, 3)).decode().replace("\n", "\r\n")
        out.append(f"--{b}\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
                   f"Content-Location: https://h.test/{k}.png\r\n\r\n{data}\r\n")
    return "".join(out + [f"--{b}--\r\n"]).encode()


def mhtml_bare(data: bytes) -> None:
    import email

    msg = email.message_from_bytes(data)
    decode_all(p.get_payload(decode=True) for p in msg.walk() if p.get_content_type() == "image/png")


def case(name: str, tmp: Path, limits: Limits):
    """(medimg reading the input, the bare libraries reading it)."""
    def source(data: bytes, file_name: str):
        return lambda: list(open_input(Blob(file_name, data, name=file_name), limits))

    if name == "files":
        from medimg.sources import files

        paths = folder(tmp)
        forget = getattr(files, "headers_naming", None)  # its folder's headers read again each run (none before 38)

        def ours():
            if forget is not None:
                forget.cache_clear()
            return list(open_inputs(paths, limits))
        return ours, (lambda: [Path(p).read_bytes() for p in paths])
    if name == "zip":
        data = zipped({f"set/{k // 100}/img{k:04d}.png": png(k, 40) for k in range(3000)})
        return source(data, "pngs.zip"), lambda: decode_all(members(data))
    if name == "deck":
        data = deck()
        return source(data, "deck.pptx"), lambda: decode_all(members(data, "ppt/media/"))
    if name == "pdf":
        data = pdf()
        return source(data, "images.pdf"), lambda: pdf_bare(data)
    if name == "page":
        from medimg.sources import web_page

        html = page()
        return (lambda: web_page.extract(html, "http://h/")), lambda: page_bare(html)
    if name == "dicom":
        data = enhanced_mr()
        return source(data, "mr.dcm"), lambda: dicom_bare(data)
    if name == "frames":
        data = gif()
        every = dataclasses.replace(limits, all_frames=True, max_images_per_input=1000)
        return (lambda: list(open_input(Blob("f.gif", data, name="f.gif"), every))), lambda: gif_bare(data)
    if name in ("svg", "svgpics"):
        data = svg(5 if name == "svgpics" else 0)
        return source(data, "drawing.svg"), ((lambda: data.lower()) if name == "svg" else lambda: svg_bare(data))
    if name == "saved":
        data = mhtml()
        return source(data, "page.mhtml"), lambda: mhtml_bare(data)
    data = plate()
    return source(data, "plate.ome.tif"), lambda: plate_bare(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    limits = Limits()

    with tempfile.TemporaryDirectory() as tmp:
        for name in ("files", "zip", "deck", "pdf", "page", "dicom", "plate", "frames", "svg", "svgpics", "saved"):
            if args.only and name not in args.only:
                continue
            ours, bare = case(name, Path(tmp), limits)
            ours()  # imports, first-use caches
            mine, base = cpu(ours, args.repeat), cpu(bare, args.repeat)
            print(f"{name:6s} medimg {mine * 1000:8.1f} ms  baseline {base * 1000:8.1f} ms  {mine / base:5.2f}x",
                  flush=True)


if __name__ == "__main__":
    sys.exit(main())
