"""a3gan.data.celeba: parsing by name, partitions, crop geometry, cache, loader order, and every bad-data error."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from celeba_fakes import (
    FILES,
    IDENTITIES,
    OFFICIAL_40,
    PAPER_BITS,
    PARTITIONS,
    SMILING,
    make_celeba,
    noise_image,
)
from PIL import Image

from a3gan.attributes import ATTRIBUTES
from a3gan.data import _decode
from a3gan.data import celeba as cb
from a3gan.data.celeba import CelebA, build_image_cache, make_loader, read_attr_file
from a3gan.errors import A3GANError, DataError, InputError

R = 32
EXPECTED = np.array([[int(c) for c in PAPER_BITS[f]] for f in FILES], dtype=np.uint8)


def load(root: Path, tmp_path: Path, **kw) -> CelebA:
    kw.setdefault("partition", "all")
    kw.setdefault("progress", False)
    return CelebA(root, kw.pop("resolution", R), cache_dir=tmp_path / "cache", **kw)


# ---- items ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(178, 218), (89, 109)])
def test_items_shape_dtype_range(tmp_path, size):
    root = make_celeba(tmp_path / "c", size=size)
    ds = load(root, tmp_path)
    assert len(ds) == 12
    x, a = ds[0]
    assert x.shape == (3, R, R) and x.dtype == torch.float32
    assert a.shape == (10,) and a.dtype == torch.float32
    xs = torch.stack([ds[i][0] for i in range(len(ds))])
    assert xs.min() >= -1.0 and xs.max() <= 1.0
    assert xs.min() < -0.9 and xs.max() > 0.9  # noise images use the full range
    assert set(torch.stack([ds[i][1] for i in range(12)]).unique().tolist()) <= {0.0, 1.0}
    assert ds[-1][0].equal(ds[11][0])
    with pytest.raises(IndexError):
        ds[12]


def test_float_conversion_is_exact(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path)
    u8 = torch.from_numpy(np.array(ds.images[3])).permute(2, 0, 1).float()
    assert torch.allclose(ds[3][0], u8 / 127.5 - 1.0, atol=1e-6)
    # 0 -> -1 and 255 -> 1 exactly
    assert float(torch.tensor(0.0) / 127.5 - 1) == -1.0 and float(torch.tensor(255.0) / 127.5 - 1) == 1.0


def test_cache_matches_direct_decode(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path)
    direct = _decode.decode_one(str(fake_celeba / "img_align_celeba" / FILES[5]), R)
    assert np.array_equal(ds.images[5], direct)
    # and it equals Pillow's resize of the STGAN box with the documented filter
    with Image.open(fake_celeba / "img_align_celeba" / FILES[5]) as im:
        ref = np.asarray(im.convert("RGB").resize((R, R), Image.Resampling.LANCZOS, box=(3, 26, 173, 196)))
    assert np.array_equal(direct, ref)


def test_batched_fetch_equals_single_items(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path)
    batch = ds.__getitems__([3, 0, -1, 3])
    for (x, a), i in zip(batch, [3, 0, 11, 3], strict=True):
        assert torch.equal(x, ds[i][0]) and torch.equal(a, ds[i][1])
    with pytest.raises(IndexError):
        ds.__getitems__([0, 12])
    flipped = load(fake_celeba, tmp_path, flip=True)
    torch.manual_seed(0)
    xs = [x for x, _ in flipped.__getitems__(list(range(12)))]
    mirrored = [torch.equal(x, ds[i][0].flip(-1)) for i, x in enumerate(xs)]
    assert all(m or torch.equal(x, ds[i][0]) for i, (x, m) in enumerate(zip(xs, mirrored, strict=True)))
    assert any(mirrored) and not all(mirrored)


# ---- attributes ---------------------------------------------------------------------------------------------------


def test_attributes_by_name_match_hand_written_rows(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path)
    assert ds.attributes == ATTRIBUTES
    assert ds.files == FILES
    assert np.array_equal(ds.attr_matrix, EXPECTED)
    assert torch.equal(
        ds[8][1], torch.tensor([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=torch.float32)
    )  # "1110000000"


def test_reordered_header_is_read_by_name(tmp_path):
    header = list(OFFICIAL_40)
    random.Random(3).shuffle(header)
    assert header != OFFICIAL_40
    root = make_celeba(tmp_path / "c", header=header)
    ds = load(root, tmp_path)
    assert np.array_equal(ds.attr_matrix, EXPECTED)


def test_any_attribute_list_in_given_order(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path, attributes=["Smiling", "male"])  # case-insensitive fallback
    assert ds.attributes == ("Smiling", "Male")
    male = [int(PAPER_BITS[f][ATTRIBUTES.index("Male")]) for f in FILES]
    assert ds.attr_matrix.tolist() == [[SMILING[f], m] for f, m in zip(FILES, male, strict=True)]


def test_read_attr_file_maps_minus_one_to_zero(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("3\nA B C\nx.jpg -1  1 -1\ny.jpg  1  1  1\nz.jpg -1 -1 -1\n")
    t = read_attr_file(p, ["C", "A"])
    assert t.files == ["x.jpg", "y.jpg", "z.jpg"]
    assert t.names == ("C", "A") and t.header == ("A", "B", "C")
    assert t.values.tolist() == [[0, 0], [1, 1], [0, 0]] and t.values.dtype == np.uint8
    assert read_attr_file(p).values.tolist() == [[0, 1, 0], [1, 1, 1], [0, 0, 0]]


def test_identities(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path)
    assert ds.identities.tolist() == IDENTITIES
    os.remove(fake_celeba / "identity_CelebA.txt")
    assert load(fake_celeba, tmp_path).identities is None


# ---- partitions -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("partition", "code"), [("train", 0), ("val", 1), ("test", 2)])
def test_partition_filtering(fake_celeba, tmp_path, partition, code):
    ds = load(fake_celeba, tmp_path, partition=partition)
    want = [f for f, p in zip(FILES, PARTITIONS, strict=True) if p == code]
    assert ds.files == want
    idx = [FILES.index(f) for f in want]
    assert np.array_equal(ds.attr_matrix, EXPECTED[idx])
    assert ds.identities.tolist() == [IDENTITIES[i] for i in idx]
    full = load(fake_celeba, tmp_path)
    assert np.array_equal(ds.images[0], full.images[idx[0]])


def test_limit_takes_first_files(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path, partition="train", limit=4)
    assert ds.files == FILES[:4]


def test_empty_partition_names_counts(tmp_path):
    root = make_celeba(tmp_path / "c", partitions=[0] * 12)
    with pytest.raises(
        DataError, match=r"list_eval_partition.txt: partition 'val' holds no images \(train 12"
    ):
        load(root, tmp_path, partition="val")


# ---- crop geometry ----------------------------------------------------------------------------------------------


def _marker_master() -> Image.Image:
    """356x436 (= 2 x 178x218 = 4 x 89x109): black, a white square at [176,260)x[136,220), a white bar on
    rows [0,16) (outside the crop, which starts at row 52)."""
    a = np.zeros((436, 356, 3), np.uint8)
    a[136:220, 176:260] = 255
    a[0:16, :] = 255
    return Image.fromarray(a)


@pytest.mark.parametrize(("size", "factor"), [((178, 218), 2), ((89, 109), 4)])
def test_crop_marker_lands_where_expected(tmp_path, size, factor):
    master = _marker_master()
    root = make_celeba(tmp_path / "c", size=size, image_fn=lambda i, f: master.reduce(factor))
    x = load(root, tmp_path, limit=1)[0][0].mean(0)  # (R, R) grey, -1 black .. 1 white
    w = (x + 1) / 2
    ys, xs = torch.meshgrid(
        torch.arange(R, dtype=torch.float64), torch.arange(R, dtype=torch.float64), indexing="ij"
    )
    cy = float((w * ys).sum() / w.sum())
    cx = float((w * xs).sum() / w.sum())
    # Square centre at (109, 89) in 178x218 px (the same point at any scale); crop (3, 26, 170x170):
    # output pixel index = (src - offset) / 170 * 32 - 0.5 -> x 19.453, y 11.359
    assert cx == pytest.approx((109 - 3) / 170 * R - 0.5, abs=0.15)
    assert cy == pytest.approx((89 - 26) / 170 * R - 0.5, abs=0.15)
    assert x[11, 19] > 0.9  # inside the square
    assert x[:4].max() < -0.9  # the bar above the crop is excluded
    assert x[28:, :].max() < -0.9 and x[:, :12].max() < -0.9


# ---- cache ------------------------------------------------------------------------------------------------------


def test_cache_reused_without_decoding(fake_celeba, tmp_path, monkeypatch):
    ds = load(fake_celeba, tmp_path)
    assert not ds.cache_hit and ds.cache_path.is_file()
    assert ds.cache_path.parent == tmp_path / "cache"
    mtime = ds.cache_path.stat().st_mtime_ns
    first = np.array(ds.images)

    def boom(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(_decode, "decode_chunk", boom)
    ds2 = load(fake_celeba, tmp_path)
    assert ds2.cache_hit and ds2.cache_path == ds.cache_path
    assert ds2.cache_path.stat().st_mtime_ns == mtime
    assert np.array_equal(np.array(ds2.images), first)
    assert not list((tmp_path / "cache").glob("*.tmp-*"))


def test_cache_key_depends_on_resolution_and_files(fake_celeba, tmp_path):
    a = load(fake_celeba, tmp_path)
    b = load(fake_celeba, tmp_path, resolution=16)
    c = load(fake_celeba, tmp_path, limit=5)
    assert len({a.cache_path, b.cache_path, c.cache_path}) == 3
    assert b.images.shape == (12, 16, 16, 3) and c.images.shape == (5, R, R, 3)


def test_damaged_cache_is_rebuilt(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path)
    good = np.array(ds.images)
    with open(ds.cache_path, "r+b") as fh:
        fh.truncate(200)
    ds2 = load(fake_celeba, tmp_path)
    assert not ds2.cache_hit and np.array_equal(np.array(ds2.images), good)


def test_default_cache_dir(fake_celeba, tmp_path, monkeypatch):
    monkeypatch.setenv("A3GAN_CACHE_DIR", str(tmp_path / "env"))
    assert cb.default_cache_dir(fake_celeba) == tmp_path / "env"
    monkeypatch.delenv("A3GAN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cb.default_cache_dir(fake_celeba) == tmp_path / "xdg" / "a3gan"
    assert not (fake_celeba / ".a3gan_cache").exists()  # the dataset folder is never written to


def test_worker_pool_decode_equals_in_process(fake_celeba, tmp_path):
    paths = [str(fake_celeba / "img_align_celeba" / f) for f in FILES]
    build_image_cache(paths, R, tmp_path / "one.npy", workers=1, progress=False, chunk=4)
    build_image_cache(paths, R, tmp_path / "two.npy", workers=2, progress=False, chunk=4)
    assert np.array_equal(np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy"))


def _open_in_child(args) -> bool:
    root, cache = args
    return CelebA(root, R, "all", cache_dir=cache, progress=False).cache_hit


def test_concurrent_processes_decode_once(fake_celeba, tmp_path):
    """N training processes started together: the file lock lets one decode; the others reuse its cache."""
    import multiprocessing as mp

    with mp.get_context("fork").Pool(3) as pool:
        hits = pool.map(_open_in_child, [(fake_celeba, tmp_path / "cache")] * 3)
    assert sorted(hits) == [False, True, True]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_pickle_does_not_carry_the_memmap(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path)
    ds.images  # noqa: B018 - opens the map
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._mm is None
    assert clone[4][0].equal(ds[4][0])


# ---- loader -----------------------------------------------------------------------------------------------------


def _order(loader) -> list[list[float]]:
    return [row.tolist() for _, a in loader for row in a]


def test_loader_seeded_order(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path, attributes=OFFICIAL_40)  # 40 columns: rows are distinct per file
    rows = {tuple(r.tolist()) for r in ds.attr_matrix}
    assert len(rows) == 12
    one = _order(make_loader(ds, 4, seed=5, num_workers=0))
    two = _order(make_loader(ds, 4, seed=5, num_workers=0))
    other = _order(make_loader(ds, 4, seed=6, num_workers=0))
    assert one == two and one != other and len(one) == 12
    plain = _order(make_loader(ds, 4, shuffle=False, num_workers=0))
    assert plain == [r.tolist() for r in torch.from_numpy(ds.attr_matrix.astype(np.float32))]


def test_loader_with_workers_same_order_and_flips(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path, flip=True)
    ref = make_loader(ds, 4, seed=2, num_workers=0)
    assert not ref.pin_memory or torch.cuda.is_available()
    loader = make_loader(ds, 4, seed=2, num_workers=2)
    assert loader.persistent_workers
    b1 = [(x.clone(), a.clone()) for x, a in loader]
    b2 = [(x.clone(), a.clone()) for x, a in make_loader(ds, 4, seed=2, num_workers=2)]
    assert [a.tolist() for _, a in b1] == [a.tolist() for _, a in ref]
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(b1, b2, strict=True))  # same flips too
    # every image is the stored crop or its mirror, and both occur
    plain = CelebA(fake_celeba, R, "all", cache_dir=tmp_path / "cache", progress=False)
    by_attr = {tuple(plain[i][1].tolist()): plain[i][0] for i in range(12)}
    flipped = []
    for x, a in b1:
        for xi, ai in zip(x, a, strict=True):
            orig = by_attr.get(tuple(ai.tolist()))
            if orig is None:
                continue  # two files share a label vector; skip the ambiguous ones
            assert torch.equal(xi, orig) or torch.equal(xi, orig.flip(-1))
            flipped.append(not torch.equal(xi, orig))
    assert any(flipped) and not all(flipped)


def test_loader_bad_arguments(fake_celeba, tmp_path):
    ds = load(fake_celeba, tmp_path)
    with pytest.raises(InputError, match="batch_size"):
        make_loader(ds, 0)
    with pytest.raises(InputError, match="num_workers"):
        make_loader(ds, 2, num_workers=-1)
    with pytest.raises(DataError, match="fewer than one batch of 13"):
        make_loader(ds, 13)
    assert len(make_loader(ds, 13, drop_last=False, num_workers=0)) == 1


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"resolution": 0}, "resolution"),
        ({"partition": "training"}, "partition must be one of"),
        ({"limit": 0}, "limit"),
        ({"attributes": []}, "attributes must not be empty"),
        ({"attributes": ["Male", "Male"]}, "duplicate"),
    ],
)
def test_bad_arguments(fake_celeba, tmp_path, kw, match):
    with pytest.raises(InputError, match=match):
        load(fake_celeba, tmp_path, **kw)


# ---- bad data ---------------------------------------------------------------------------------------------------


def _rewrite_attr_line(root: Path, lineno: int, fn) -> None:
    p = root / "list_attr_celeba.txt"
    lines = p.read_text().splitlines()
    lines[lineno - 1] = fn(lines[lineno - 1])
    p.write_text("\n".join(lines) + "\n")


def _expect(root: Path, tmp_path: Path, *patterns: str, **kw) -> DataError:
    with pytest.raises(DataError) as ei:
        load(root, tmp_path, **kw)
    msg = str(ei.value)
    assert "\n" not in msg and isinstance(ei.value, A3GANError)
    for p in patterns:
        assert p in msg, (p, msg)
    return ei.value


def test_missing_root_folder_and_files(tmp_path):
    _expect(tmp_path / "nope", tmp_path, "nope", "not found")
    root = make_celeba(tmp_path / "c")
    os.remove(root / "list_eval_partition.txt")
    _expect(root, tmp_path, "list_eval_partition.txt: file not found", partition="train")
    assert len(load(root, tmp_path)) == 12  # "all" does not need the partition file
    os.remove(root / "list_attr_celeba.txt")
    _expect(root, tmp_path, "list_attr_celeba.txt: file not found")


def test_missing_image_folder(fake_celeba, tmp_path):
    (fake_celeba / "img_align_celeba").rename(fake_celeba / "images")
    _expect(fake_celeba, tmp_path, "img_align_celeba: image folder not found")


def test_count_mismatch(fake_celeba, tmp_path):
    _rewrite_attr_line(fake_celeba, 1, lambda s: "13")
    _expect(fake_celeba, tmp_path, "list_attr_celeba.txt", "line 1 says 13 rows but the file has 12")


def test_bad_count_line(fake_celeba, tmp_path):
    _rewrite_attr_line(fake_celeba, 1, lambda s: "twelve")
    _expect(fake_celeba, tmp_path, "list_attr_celeba.txt: line 1", "number of rows")


def test_missing_header(tmp_path):
    root = make_celeba(tmp_path / "c")
    _rewrite_attr_line(root, 2, lambda s: "000000.jpg " + " ".join(["-1"] * 40))
    _expect(root, tmp_path, "list_attr_celeba.txt: line 2: bad header", "header line missing")


def test_duplicate_header_name(tmp_path):
    root = make_celeba(tmp_path / "c", header=[*OFFICIAL_40[:-1], "Male"])
    _expect(root, tmp_path, "line 2: bad header: duplicate attribute names ['Male']")


def test_csv_variant_is_named(fake_celeba, tmp_path):
    _rewrite_attr_line(fake_celeba, 2, lambda s: ",".join(s.split()))
    _expect(fake_celeba, tmp_path, "list_attr_celeba.txt", "comma-separated")


def test_wrong_column_count(fake_celeba, tmp_path):
    _rewrite_attr_line(fake_celeba, 7, lambda s: s.rsplit(" ", 1)[0])  # drop the last value of 000005.jpg
    _expect(fake_celeba, tmp_path, "list_attr_celeba.txt: line 7: expected 41 columns", "got 40")


def test_extra_and_missing_value_in_two_rows(fake_celeba, tmp_path):
    # one row one short, the next one long: total token count still right, rows misaligned
    _rewrite_attr_line(fake_celeba, 5, lambda s: s.rsplit(" ", 1)[0])
    _rewrite_attr_line(fake_celeba, 6, lambda s: s + "  1")
    _expect(fake_celeba, tmp_path, "list_attr_celeba.txt: line 5: expected 41 columns")


@pytest.mark.parametrize("bad", ["0", "2", "1.0", "-1x", "yes"])
def test_non_pm1_value(fake_celeba, tmp_path, bad):
    _rewrite_attr_line(fake_celeba, 10, lambda s: " ".join([*s.split()[:5], bad, *s.split()[6:]]))
    _expect(
        fake_celeba,
        tmp_path,
        f"list_attr_celeba.txt: line 10: attribute {OFFICIAL_40[4]!r} of 000008.jpg is {bad!r}",
        "must be -1 or 1",
    )


def test_duplicate_row(fake_celeba, tmp_path):
    _rewrite_attr_line(fake_celeba, 4, lambda s: "000001.jpg" + s[len("000002.jpg") :])
    _expect(fake_celeba, tmp_path, "list_attr_celeba.txt: line 4: duplicate row for 000001.jpg")


def test_requested_attribute_missing_lists_available(fake_celeba, tmp_path):
    e = _expect(
        fake_celeba,
        tmp_path,
        "attribute 'Sunglasses' is not in the header",
        "available: 5_o_Clock_Shadow",
        attributes=["Male", "Sunglasses"],
    )
    assert "Young" in str(e)


def test_image_listed_but_missing(fake_celeba, tmp_path):
    os.remove(fake_celeba / "img_align_celeba" / "000004.jpg")
    _expect(fake_celeba, tmp_path, "000004.jpg: listed in", "list_attr_celeba.txt but not on disk")


def test_image_without_label_row(fake_celeba, tmp_path):
    noise_image((178, 218), 99).save(fake_celeba / "img_align_celeba" / "000013.jpg")
    _expect(fake_celeba, tmp_path, "000013.jpg: image has no label row in", "list_attr_celeba.txt")


def test_partition_row_without_label_row(fake_celeba, tmp_path):
    with open(fake_celeba / "list_eval_partition.txt", "a") as fh:
        fh.write("000013.jpg 0\n")
    _expect(
        fake_celeba,
        tmp_path,
        "000013.jpg: listed in",
        "list_eval_partition.txt but has no label row",
        partition="train",
    )


def test_label_row_without_partition_row(fake_celeba, tmp_path):
    p = fake_celeba / "list_eval_partition.txt"
    p.write_text("".join(p.read_text().splitlines(keepends=True)[:-1]))
    _expect(fake_celeba, tmp_path, "000012.jpg: has a label row in", "but no row in", partition="test")


def test_bad_partition_value(fake_celeba, tmp_path):
    p = fake_celeba / "list_eval_partition.txt"
    p.write_text(p.read_text().replace("000003.jpg 0", "000003.jpg 3"))
    _expect(
        fake_celeba,
        tmp_path,
        "list_eval_partition.txt: line 3: partition of 000003.jpg is 3",
        partition="train",
    )


def test_missing_identity_row(fake_celeba, tmp_path):
    p = fake_celeba / "identity_CelebA.txt"
    p.write_text(p.read_text().replace("000006.jpg 3\n", ""))
    _expect(fake_celeba, tmp_path, "000006.jpg: image has no identity row in", "identity_CelebA.txt")


def test_truncated_jpeg_is_rejected_and_leaves_no_cache(fake_celeba, tmp_path):
    p = fake_celeba / "img_align_celeba" / "000007.jpg"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])
    _expect(fake_celeba, tmp_path, "000007.jpg: corrupt or truncated image", "truncated")
    assert not [q for q in (tmp_path / "cache").iterdir() if q.suffix == ".npy" or ".tmp-" in q.name]


def test_truncation_of_only_the_end_marker_is_rejected(fake_celeba, tmp_path):
    p = fake_celeba / "img_align_celeba" / "000002.jpg"
    p.write_bytes(p.read_bytes()[:-2])
    _expect(fake_celeba, tmp_path, "000002.jpg: corrupt or truncated image")


def test_truncated_image_rejected_even_if_pillow_global_allows_it(fake_celeba, tmp_path, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # some other library set it
    p = fake_celeba / "img_align_celeba" / "000007.jpg"
    p.write_bytes(p.read_bytes()[:-300])
    _expect(fake_celeba, tmp_path, "000007.jpg: corrupt or truncated image")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_corrupt_image_in_worker_pool(fake_celeba, tmp_path):
    (fake_celeba / "img_align_celeba" / "000010.jpg").write_bytes(b"\xff\xd8 not really a jpeg" * 10)
    paths = [str(fake_celeba / "img_align_celeba" / f) for f in FILES]
    with pytest.raises(DataError, match=r"000010.jpg: corrupt or truncated image"):
        build_image_cache(paths, R, tmp_path / "x.npy", workers=2, progress=False, chunk=3)
    assert list(tmp_path.glob("x.npy*")) == []


def test_image_that_is_not_celeba_aligned(fake_celeba, tmp_path):
    noise_image((128, 128), 0).save(fake_celeba / "img_align_celeba" / "000003.jpg")
    _expect(fake_celeba, tmp_path, "000003.jpg", "not a scaled CelebA aligned image")


def test_grayscale_image_is_converted(fake_celeba, tmp_path):
    noise_image((178, 218), 1).convert("L").save(fake_celeba / "img_align_celeba" / "000003.jpg")
    x = load(fake_celeba, tmp_path)[2][0]
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])


# ---- shared subset ----------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_shared_subset(celeba_dir, tmp_path):
    ds = CelebA(celeba_dir, 64, "train", limit=128, cache_dir=tmp_path, progress=False)
    assert len(ds) == 128
    assert ds.files[:3] == ["000001.jpg", "000002.jpg", "000003.jpg"]
    # the label file's rows, parsed independently
    lines = (celeba_dir / "list_attr_celeba.txt").read_text().splitlines()
    header = lines[1].split()
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[2:130]}
    want = [[int(rows[f][header.index(a)] == "1") for a in ATTRIBUTES] for f in ds.files]
    assert ds.attr_matrix.tolist() == want
    ids = dict(ln.split() for ln in (celeba_dir / "identity_CelebA.txt").read_text().splitlines()[:128])
    assert ds.identities.tolist() == [int(ids[f]) for f in ds.files]
    x, a = ds[0]
    assert x.shape == (3, 64, 64) and -1 <= x.min() < x.max() <= 1
    assert a.tolist() == [float(v) for v in want[0]]
    assert float(x.std()) > 0.1  # a real face, not a flat image
    batch = next(iter(make_loader(ds, 32, seed=0, num_workers=0)))
    assert batch[0].shape == (32, 3, 64, 64) and batch[1].shape == (32, 10)
