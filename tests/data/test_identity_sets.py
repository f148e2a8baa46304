"""a3gan.data.identity_sets: CelebA-layout and person/*.jpg identity sets for evaluation."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from celeba_fakes import FILES, IDENTITIES, PARTITIONS, noise_image

from a3gan.data.identity_sets import IdentitySet, load_identity_set
from a3gan.errors import DataError, InputError

# IDENTITIES = [7, 7, 7, 9, 9, 3, 5, 5, 5, 5, 11, 12]: 7 (3 images), 9 (2), 5 (4) have >= 2 images


def test_celeba_layout(fake_celeba):
    s = load_identity_set(fake_celeba)
    assert isinstance(s, IdentitySet)
    assert s.aligned and s.layout == "celeba" and s.root == fake_celeba
    assert len(s) == 9 and s.n_identities == 3
    want = sorted(
        (fake_celeba / "img_align_celeba" / f, i)
        for f, i in zip(FILES, IDENTITIES, strict=True)
        if IDENTITIES.count(i) >= 2
    )
    assert sorted(s.items, key=lambda t: (t[1], t[0])) == s.items
    assert sorted(s.items) == want
    assert s.labels == [5, 5, 5, 5, 7, 7, 7, 9, 9]
    assert s.names == {5: "5", 7: "7", 9: "9"}
    assert all(p.is_file() for p in s.paths)


def test_min_per_identity(fake_celeba):
    s = load_identity_set(fake_celeba, min_per_identity=3)
    assert Counter(s.labels) == {5: 4, 7: 3}
    assert len(load_identity_set(fake_celeba, min_per_identity=1)) == 12


def test_limit_keeps_whole_identities_reproducibly(fake_celeba):
    for seed in range(6):
        s = load_identity_set(fake_celeba, limit=5, seed=seed)
        counts = Counter(s.labels)
        assert 2 <= len(s) <= 5 and all(c >= 2 for c in counts.values())
        assert s.items == load_identity_set(fake_celeba, limit=5, seed=seed).items
    chosen = {tuple(load_identity_set(fake_celeba, limit=4, seed=seed).labels) for seed in range(12)}
    assert len(chosen) > 1  # the seed changes the choice
    with pytest.raises(DataError, match="limit=1 is too small"):
        load_identity_set(fake_celeba, limit=1)


def test_partition(fake_celeba):
    s = load_identity_set(fake_celeba, partition="train")  # files 1-6: ids 7,7,7,9,9,3
    assert s.labels == [7, 7, 7, 9, 9]
    assert all(PARTITIONS[FILES.index(p.name)] == 0 for p in s.paths)
    with pytest.raises(DataError, match="no identity has >= 2 images"):
        load_identity_set(fake_celeba, partition="test")  # ids 5, 11, 12: one image each


def test_in_the_wild_celeba(fake_celeba):
    (fake_celeba / "img_align_celeba").rename(fake_celeba / "img_celeba")
    s = load_identity_set(fake_celeba)
    assert not s.aligned and s.layout == "celeba" and len(s) == 9
    assert s.paths[0].parent.name == "img_celeba"


def _tree(root: Path, people: dict[str, int], ext: str = ".jpg") -> Path:
    for k, (person, n) in enumerate(people.items()):
        (root / person).mkdir(parents=True)
        for j in range(n):
            noise_image((40, 50), 10 * k + j).save(root / person / f"{j}{ext}")
    return root


def test_folder_tree(tmp_path):
    root = _tree(tmp_path / "people", {"carol": 3, "alice": 2, "bob": 1})
    (root / "alice" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    s = load_identity_set(root)
    assert not s.aligned and s.layout == "folders"
    assert s.names == {0: "alice", 2: "carol"}  # labels are sorted folder indices; bob has one image
    assert [(p.parent.name, p.name, lab) for p, lab in s.items] == [
        ("alice", "0.jpg", 0),
        ("alice", "1.jpg", 0),
        ("carol", "0.jpg", 2),
        ("carol", "1.jpg", 2),
        ("carol", "2.jpg", 2),
    ]


def test_folder_tree_png(tmp_path):
    s = load_identity_set(_tree(tmp_path / "p", {"x": 2}, ext=".PNG"))
    assert len(s) == 2


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found"):
        load_identity_set(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: the folder is empty"):
        load_identity_set(tmp_path / "empty")
    (tmp_path / "dirs" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found in person/"):
        load_identity_set(tmp_path / "dirs")


def test_loose_images_get_a_hint(tmp_path):
    (tmp_path / "loose").mkdir()
    noise_image((40, 50), 0).save(tmp_path / "loose" / "a.jpg")
    with pytest.raises(DataError, match="one sub-folder per person"):
        load_identity_set(tmp_path / "loose")


def test_no_identity_with_two_images(tmp_path):
    root = _tree(tmp_path / "p", {"a": 1, "b": 1, "c": 1})
    with pytest.raises(DataError, match=r"no identity has >= 2 images \(found 3 identities, at most 1"):
        load_identity_set(root)


def test_celeba_errors(fake_celeba):
    os.remove(fake_celeba / "img_align_celeba" / "000008.jpg")
    with pytest.raises(DataError, match=r"000008.jpg: listed in .*identity_CelebA.txt but not on disk"):
        load_identity_set(fake_celeba)
    os.remove(fake_celeba / "identity_CelebA.txt")
    with pytest.raises(DataError, match="identity_CelebA.txt: file not found"):
        load_identity_set(fake_celeba)


def test_celeba_bad_identity_file(fake_celeba):
    (fake_celeba / "identity_CelebA.txt").write_text("000001.jpg 7\n000002.jpg seven\n")
    with pytest.raises(DataError, match=r"identity_CelebA.txt: line 2: identity of 000002.jpg is 'seven'"):
        load_identity_set(fake_celeba)


def test_celeba_not_aligned_size(fake_celeba):
    noise_image((100, 100), 0).save(fake_celeba / "img_align_celeba" / "000001.jpg")
    with pytest.raises(DataError, match="000001.jpg: .*not a scaled CelebA aligned image"):
        load_identity_set(fake_celeba)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"limit": 0}, "limit"),
        ({"min_per_identity": 0}, "min_per_identity"),
        ({"partition": "dev"}, "partition"),
    ],
)
def test_bad_arguments(fake_celeba, kw, match):
    with pytest.raises(InputError, match=match):
        load_identity_set(fake_celeba, **kw)


def test_partition_needs_celeba_layout(tmp_path):
    with pytest.raises(InputError, match="partition needs a CelebA-layout folder"):
        load_identity_set(_tree(tmp_path / "p", {"a": 2}), partition="train")


@pytest.mark.shared_data
def test_shared_subset(celeba_dir):
    s = load_identity_set(celeba_dir)
    assert s.aligned and s.layout == "celeba"
    assert len(s) == 7425 and s.n_identities == 2854  # identities with >= 2 of the 10,000 images
    small = load_identity_set(celeba_dir, limit=200, seed=1)
    assert 198 <= len(small) <= 200 and min(Counter(small.labels).values()) >= 2
