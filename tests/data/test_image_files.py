"""Bad image files: truncated JPEGs at decode time, and the start-up header check of the training set."""
import logging
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from sniper_d2.chips import Chip, ValidRange
from sniper_d2.data import image_files
from sniper_d2.data.build import build_chip_planner, build_sniper_train_loader
from sniper_d2.data.chip_image import ImageSizeMismatchError, read_chip_image
from sniper_d2.data.chip_mapper import SniperChipMapper
from sniper_d2.data.image_files import check_training_images, jpeg_is_complete

from sniper_test_data import register_dataset, small_sniper_cfg, tiny_records

CHIP = Chip(image_id=7, scale_index=0, scale=1.0, origin=(0, 0), size=(64, 64), box_ids=np.zeros(0, np.int64),
            negative=False)


def textured(width=200, height=120, seed=0):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3)).astype(np.uint8), (0, 0), 2)


def write_jpeg(path, image, progressive=False):
    flags = [cv2.IMWRITE_JPEG_QUALITY, 90] + ([cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else [])
    cv2.imwrite(str(path), image, flags)
    return path.read_bytes()


def cut(path, fraction=0.4):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])


def chip_input(path, width=200, height=120):
    return {
        "file_name": str(path), "image_id": 7, "width": width, "height": height,
        "sniper_ref": f"dataset 'hand', image_id 7 ({path})",
        "sniper_boxes": np.zeros((0, 4)), "sniper_classes": np.zeros(0, np.int64), "sniper_crowd": np.zeros(0, bool),
        "sniper_chip": CHIP, "sniper_epoch": 0, "sniper_epoch_stats": {},
    }


def test_jpeg_completeness_ignores_thumbnails_and_trailing_data(tmp_path):
    full = write_jpeg(tmp_path / "a.jpg", textured())
    progressive = write_jpeg(tmp_path / "p.jpg", textured(), progressive=True)
    thumbnail = write_jpeg(tmp_path / "t.jpg", textured(16, 16))
    # an APP1 segment holding a complete JPEG (as an EXIF thumbnail does) before the main image
    app1 = b"Exif\x00\x00" + thumbnail
    with_thumb = full[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + full[2:]
    assert jpeg_is_complete(full) and jpeg_is_complete(progressive) and jpeg_is_complete(with_thumb)
    assert jpeg_is_complete(full + b"trailing data some cameras append")
    for data in (full, progressive, with_thumb):
        for fraction in (0.4, 0.9):
            assert not jpeg_is_complete(data[:int(len(data) * fraction)])
    assert not jpeg_is_complete(full[:len(full) - 2])


def test_truncated_jpeg_chip_fails_naming_dataset_image_and_file(tmp_path):
    path = tmp_path / "cut.jpg"
    write_jpeg(path, textured())
    cut(path)
    mapper = SniperChipMapper(valid_ranges=[ValidRange()], min_box_size=1)
    with pytest.raises(OSError, match=r"dataset 'hand', image_id 7 \(.*cut\.jpg\).*truncated"):
        mapper(chip_input(path))
    # also when decoded at reduced resolution (coarse chip)
    with pytest.raises(OSError, match=r"cut\.jpg.*truncated"):
        read_chip_image(str(path), (200, 120), 0.2, (0, 0), (40, 24), ref=str(path))


def test_complete_jpeg_reads_at_full_and_reduced_resolution(tmp_path):
    path = tmp_path / "ok.jpg"
    write_jpeg(path, textured())
    for scale, size in ((1.0, (64, 64)), (0.5, (100, 60)), (0.2, (40, 24))):
        chip, _ = read_chip_image(str(path), (200, 120), scale, (0, 0), size)
        assert chip.shape == (size[1], size[0], 3)


def _records(tmp_path, num_images=4):
    return tiny_records(tmp_path, num_images=num_images)


def _jpeg_record(tmp_path, records, index, name="cut.jpg"):
    r = records[index]
    path = tmp_path / name
    write_jpeg(path, textured(r["width"], r["height"]))
    r["file_name"] = str(path)
    return path


def test_truncated_jpeg_fails_at_start_up_naming_it(tmp_path):
    records = _records(tmp_path)
    cut(_jpeg_record(tmp_path, records, 2))
    register_dataset("sniper_test_truncated", records)
    expected = (r"(?s)1 training image.*dataset 'sniper_test_truncated', image_id 102 \(.*cut\.jpg\): "
                r"the file is truncated.*SKIP_UNREADABLE_IMAGES")
    with pytest.raises(OSError, match=expected):
        build_sniper_train_loader(small_sniper_cfg(("sniper_test_truncated",)))


def test_skip_unreadable_images_leaves_them_out_and_counts_them(tmp_path, caplog):
    records = _records(tmp_path)
    cut(_jpeg_record(tmp_path, records, 2))
    (tmp_path / "junk.png").write_bytes(b"not an image")
    records[3]["file_name"] = str(tmp_path / "junk.png")
    records[1]["file_name"] = str(tmp_path / "gone.png")
    register_dataset("sniper_test_skip", records)
    cfg = small_sniper_cfg(("sniper_test_skip",))
    cfg.SNIPER.TRAIN.SKIP_UNREADABLE_IMAGES = True
    with caplog.at_level(logging.WARNING, logger="sniper_d2.data.image_files"):
        planner = build_chip_planner(cfg)
    assert planner.table.image_ids == [100]
    assert "3 training image(s) skipped" in caplog.text and "image_id 102" in caplog.text


def test_header_size_mismatch_fails_at_start_up_before_any_chip_is_read(tmp_path, monkeypatch):
    records = _records(tmp_path)
    real = (records[1]["width"], records[1]["height"])
    records[1]["width"] += 7
    register_dataset("sniper_test_mismatch", records)
    cfg = small_sniper_cfg(("sniper_test_mismatch",))
    cfg.SNIPER.TRAIN.SKIP_UNREADABLE_IMAGES = True  # never skips a size mismatch
    monkeypatch.setattr("sniper_d2.data.chip_mapper.read_chip_image", lambda *a, **k: pytest.fail("chip read"))
    expected = (rf"dataset 'sniper_test_mismatch', image_id 101 \(.*img1\.png\): the file header says "
                rf"{real[0]}x{real[1]} px but the annotation says {real[0] + 7}x{real[1]}.*"
                r"Size mismatches: fix width/height")
    with pytest.raises(ImageSizeMismatchError, match="(?s)" + expected):
        build_sniper_train_loader(cfg)


def test_missing_file_fails_at_start_up_with_every_problem_listed(tmp_path):
    records = _records(tmp_path)
    records[0]["file_name"] = str(tmp_path / "gone.png")
    records[3]["height"] += 1
    register_dataset("sniper_test_missing_and_size", records)
    expected = r"(?s)2 training image.*image_id 100 \(.*gone\.png\): the file does not exist.*image_id 103 .*header"
    with pytest.raises(FileNotFoundError, match=expected):
        build_chip_planner(small_sniper_cfg(("sniper_test_missing_and_size",)))


def test_exif_rotated_image_is_checked_upright(tmp_path):
    path = tmp_path / "rotated.jpg"
    Image.fromarray(textured(60, 40)).save(path, exif=_orientation_exif(6))  # stored 60x40, upright 40x60
    record = {"file_name": str(path), "image_id": 1, "width": 40, "height": 60}
    assert check_training_images([("d", [record])]).datasets == [("d", [record])]
    with pytest.raises(ImageSizeMismatchError, match="header says 40x60 px but the annotation says 60x40"):
        check_training_images([("d", [dict(record, width=60, height=40)])])


def _orientation_exif(value):
    exif = Image.Exif()
    exif[274] = value
    return exif.tobytes()


def test_check_result_is_cached_until_a_file_changes(tmp_path, monkeypatch):
    records = _records(tmp_path)
    cut(_jpeg_record(tmp_path, records, 2))
    cache = tmp_path / "cache"
    kwargs = dict(skip_unreadable=True, cache_dir=str(cache), cache_min_images=0)
    first = check_training_images([("cached set", records)], **kwargs)
    assert first.cached == [] and len(first.skipped) == 1 and os.listdir(cache) == ["cached_set.json"]
    reads = []
    check_file = image_files._check_file
    monkeypatch.setattr(image_files, "_check_file", lambda *a: reads.append(a) or check_file(*a))
    second = check_training_images([("cached set", records)], **kwargs)
    assert second.cached == ["cached set"] and reads == [] and second.skipped == first.skipped
    with pytest.raises(OSError, match="truncated"):  # the cached problem still fails without the skip option
        check_training_images([("cached set", records)], cache_dir=str(cache), cache_min_images=0)
    # a changed file invalidates the cache: all headers are read again
    os.utime(records[0]["file_name"], ns=(1, 1))
    third = check_training_images([("cached set", records)], **kwargs)
    assert third.cached == [] and len(reads) == len(records)
    # not written by processes other than the main one, nor for datasets below the size threshold
    other = tmp_path / "other"
    check_training_images([("cached set", records)], skip_unreadable=True, cache_dir=str(other), cache_min_images=0,
                          main_process=False)
    check_training_images([("cached set", records)], skip_unreadable=True, cache_dir=str(other))
    assert not other.exists()
