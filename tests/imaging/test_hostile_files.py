"""Hostile and odd image files through ``digitrec predict`` and ``digitrec read``: each bad file is named with its
reason, each good one is answered, and a decompression bomb is refused before it is decoded."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from digitrec_utils.cli import EXIT_FAILED, main
from digitrec_utils.data.preparation import MAX_DECODED_PIXELS, collect_image_files, read_image
from digitrec_utils.exceptions import ImageError

BOMB_SIDE = 15_000


def _write_bomb(path):
    """A PNG of BOMB_SIDE x BOMB_SIDE white pixels: about 50 KB on disk, 225 megapixels decoded."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        Image.new("1", (BOMB_SIDE, BOMB_SIDE), 1).save(path, optimize=True)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return path


def _digit_on_paper(digit: np.ndarray, side: int = 112) -> np.ndarray:
    """A dark digit on light paper, ``side`` pixels square: what a scan of one digit looks like."""
    paper = np.full((side, side), 235, np.uint8)
    inner = np.asarray(Image.fromarray(digit).resize((side - 24, side - 24), Image.BILINEAR))
    paper[12:-12, 12:-12] = 235 - (inner.astype(np.int32) * 235 // 255)
    return paper


@pytest.fixture(scope="module")
def hostile_folder(splits, tmp_path_factory):
    """Good images in odd formats and with odd names, mixed with bad files; returns the folder and the good
    files' true labels by name."""
    folder = tmp_path_factory.mktemp("hostile")
    good = {}

    def digit(position: int) -> np.ndarray:
        return _digit_on_paper(splits.x_test[position])

    def keep(name: str, position: int) -> None:
        good[name] = splits.class_names[splits.y_test[position]]

    Image.fromarray(digit(0)).save(folder / "plain.png")
    keep("plain.png", 0)
    # 16-bit greyscale: Pillow's own conversion to 8 bits would clip every level above 255 to white.
    Image.fromarray(digit(1).astype(np.uint16) * 257).save(folder / "sixteen bit.png")
    keep("sixteen bit.png", 1)
    Image.fromarray(digit(2)).convert("P").save(folder / "palette.png")
    keep("palette.png", 2)
    Image.fromarray(digit(3)).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    keep("cmyk.jpg", 3)
    Image.fromarray(digit(4)).convert("RGB").save(folder / "progressive.jpg", quality=95, progressive=True)
    keep("progressive.jpg", 4)
    frames = [Image.fromarray(digit(5)), Image.fromarray(digit(6))]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    keep("animated.gif", 5)  # The first frame is read.
    # A phone held sideways stores the pixels turned a quarter and says so in EXIF (orientation 6: turn 90
    # degrees clockwise to view); read as stored, the digit lies on its side.
    sideways = Image.fromarray(np.rot90(digit(7), k=1))
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.convert("RGB").save(folder / "phone photo.jpg", quality=95, exif=exif)
    keep("phone photo.jpg", 7)
    Image.fromarray(digit(8)).save(folder / "chiffre_ñ_ü_数字.png")
    keep("chiffre_ñ_ü_数字.png", 8)
    # Bad files.
    _write_bomb(folder / "bomb.png")
    (folder / "empty.png").write_bytes(b"")
    whole = (folder / "plain.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    # A link back to the folder itself: walking it must end, and find each file once.
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    # A folder that cannot be read (locked by _lock in each test).
    (folder / "locked").mkdir()
    Image.fromarray(digit(9)).save(folder / "locked" / "hidden.png")
    return folder, good


def _lock(folder, monkeypatch) -> None:
    """Make ``folder`` unreadable: by its mode, or, for root (who reads any folder), where the walk and the
    reader meet it."""
    if os.geteuid() != 0:
        folder.chmod(0)
        return
    real_scandir = os.scandir

    def refusing_scandir(path="."):
        if os.fspath(path) == os.fspath(folder):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refusing_scandir)
    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != os.fspath(folder))


@pytest.fixture
def locked(hostile_folder, monkeypatch):
    folder = hostile_folder[0] / "locked"
    _lock(folder, monkeypatch)
    yield folder
    folder.chmod(0o755)


BAD_FILES = {"bomb.png": "more than digitrec decodes", "empty.png": "not a readable image",
             "truncated.png": "not a readable image", "locked": "a folder that cannot be read (permission denied)"}


def _entries_by_name(output: str) -> dict[str, dict]:
    return {entry["path"].rsplit("/", 1)[-1]: entry for entry in json.loads(output)}


def test_predict_names_each_bad_file_and_answers_each_good_one(hostile_folder, locked, saved_model, capsys):
    folder, good = hostile_folder
    status = main(["predict", str(folder), "--model", str(saved_model), "--json", "--min-confidence", "0"])
    captured = capsys.readouterr()
    entries = _entries_by_name(captured.out)
    assert status == EXIT_FAILED  # Documented: 1 when some files could not be used, the others answered.
    assert set(entries) == set(good) | set(BAD_FILES)  # Each file once, through the link loop too.
    for name, reason in BAD_FILES.items():
        assert reason in entries[name]["error"] and name in entries[name]["error"], entries[name]
    right = [entries[name].get("label") == label for name, label in good.items()]
    for name in good:
        assert "error" not in entries[name], entries[name]
    # The test's model is a cnn_small of two epochs; the upright phone photo must read like the others.
    assert sum(right) >= len(good) - 2, {name: entries[name].get("label") for name in good}


def test_read_names_each_bad_file_and_answers_each_good_one(hostile_folder, locked, saved_model, capsys):
    folder, good = hostile_folder
    status = main(["read", str(folder), "--model", str(saved_model), "--json", "--min-confidence", "0"])
    entries = _entries_by_name(capsys.readouterr().out)
    assert status == EXIT_FAILED
    assert set(entries) == set(good) | set(BAD_FILES)
    for name, reason in BAD_FILES.items():
        assert reason in entries[name]["error"], entries[name]
    for name in good:
        assert entries[name].get("text"), entries[name]
    read_right = sum(entries[name]["text"] == label for name, label in good.items())
    assert read_right >= len(good) - 2, {name: entries[name]["text"] for name in good}


def test_exif_orientation_turns_a_sideways_photo_upright(hostile_folder):
    folder, _ = hostile_folder
    stored = np.asarray(Image.open(folder / "phone photo.jpg").convert("L"))
    upright = read_image(folder / "phone photo.jpg")
    # Orientation 6 asks for a quarter turn clockwise, which is NumPy's rot90 with k=-1.
    assert upright.shape == stored.shape[::-1]
    assert np.abs(upright.astype(int) - np.rot90(stored, k=-1).astype(int)).mean() < 2


def test_sixteen_bit_levels_are_scaled_not_clipped(tmp_path):
    levels = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 to 65,520.
    Image.fromarray(levels).save(tmp_path / "sixteen.png")
    grey = read_image(tmp_path / "sixteen.png")
    np.testing.assert_array_equal(grey, np.round(levels / 257.0).astype(np.uint8))


def test_a_decompression_bomb_is_refused_in_under_a_second_and_100_mb(tmp_path):
    path = _write_bomb(tmp_path / "bomb.png")
    assert path.stat().st_size < 1_000_000 and BOMB_SIDE ** 2 > MAX_DECODED_PIXELS
    # In a fresh interpreter, so that the peak memory measured is this read's alone.
    script = ("import resource, sys, time\n"
              "from digitrec_utils.data.preparation import read_image\n"
              "from digitrec_utils.exceptions import ImageError\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "started = time.perf_counter()\n"
              "try:\n"
              "    read_image(sys.argv[1])\n"
              "except ImageError as error:\n"
              "    print(error)\n"
              "print(time.perf_counter() - started)\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    message, seconds, kilobytes = result.stdout.strip().splitlines()
    assert "bomb.png" in message and "more than digitrec decodes" in message
    assert float(seconds) < 1.0 and int(kilobytes) < 100 * 1024
    # Under Pillow's own limit (89 megapixels) but over ours, the file is refused by its header's size too.
    Image.new("L", (7000, 7000), 255).save(tmp_path / "large.png")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(ImageError, match=r"7,000 x 7,000 pixels \(49 megapixels\) is more than digitrec decodes"):
        read_image(tmp_path / "large.png")
    assert time.perf_counter() - started < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024


def test_an_unreadable_folder_is_named_and_the_rest_is_read(tmp_path, monkeypatch):
    (tmp_path / "open").mkdir()
    (tmp_path / "locked").mkdir()
    Image.new("L", (40, 40), 0).save(tmp_path / "open" / "a.png")
    Image.new("L", (40, 40), 0).save(tmp_path / "locked" / "b.png")
    locked = tmp_path / "locked"
    _lock(locked, monkeypatch)
    try:
        images, skipped = collect_image_files([tmp_path])
        assert images == [tmp_path / "locked", tmp_path / "open" / "a.png"] and skipped == []
        with pytest.raises(ImageError, match="locked: a folder that cannot be read .permission denied.; make it "
                                             "readable"):
            read_image(locked)
    finally:
        locked.chmod(0o755)
