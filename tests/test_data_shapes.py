"""Shapes (SPEC 9): the release's draw order, reproducibility and the images' properties."""
import hashlib

import h5py
import numpy as np

from tagger_torch.data.h5layout import write_fuel_file
from tagger_torch.data.shapes import SHAPES, SQUARE, TRIANGLE, generate_shapes, group_masks


def naive_release_shapes(n, seed=265076, n_shapes=3):
    """A literal twin of the release's data/shapes.py loop (float count image, swapaxes masks)."""
    rng = np.random.RandomState(seed)
    shapes = [SQUARE.astype(int), TRIANGLE.astype(int), TRIANGLE[::-1].astype(int)]
    data = np.zeros((n, 20, 20), dtype=np.float32)
    grps = np.zeros((n, 20, 20), dtype=np.uint8)
    for i in range(n):
        img, grp = np.zeros((20, 20)), np.zeros((20, 20))
        for k in range(1, n_shapes + 1):
            shape = shapes[rng.randint(0, 3)]
            sy, sx = shape.shape
            x = rng.randint(0, 20 - sx + 1)
            y = rng.randint(0, 20 - sy + 1)
            img[y:y + sy, x:x + sx][shape != 0] += 1
            grp[y:y + sy, x:x + sx][shape != 0] = k
        grp[img > 1] = 0
        data[i], grps[i] = img != 0, grp
    table = np.eye(4, dtype=np.float32)
    table[0] = 1.0 / 3
    masks = np.swapaxes(np.swapaxes(table[:, 1:][grps], 3, 2), 2, 1).reshape(n, 3, 400)
    return data.reshape(n, 400), masks


def test_shape_templates():
    assert SQUARE.sum() == 40 and SQUARE.shape == (7, 7)
    assert TRIANGLE.shape == (7, 12) and TRIANGLE.sum(1).tolist() == [2, 4, 6, 6, 6, 12, 12]
    np.testing.assert_array_equal(SHAPES[2], TRIANGLE[::-1])


def test_matches_the_release_procedure():
    splits = generate_shapes(n_train=400, n_valid=1, n_test=1, n_single=1, progress=False)
    features, masks = naive_release_shapes(400)
    np.testing.assert_array_equal(splits["train"]["features"], features)
    np.testing.assert_array_equal(splits["train"]["mask"], masks)


def test_first_images_fingerprint():
    """The legacy RandomState stream is part of the data set: any change in it must show."""
    train = generate_shapes(n_train=100, n_valid=1, n_test=1, n_single=1, progress=False)["train"]
    digest = hashlib.sha256(train["features"].tobytes() + train["mask"].tobytes()).hexdigest()
    assert digest == "aa0b7ae3f1006e5b0d4d449c85323b17a3d12509c9edbce2c391cb3dc61af45f"


def test_regeneration_is_byte_identical(tmp_path):
    paths = [tmp_path / "a.h5", tmp_path / "b.h5"]
    for path in paths:
        with h5py.File(path, "w") as f:
            write_fuel_file(f, generate_shapes(n_train=40, n_valid=10, n_test=10, n_single=10, progress=False))
    a, b = (p.read_bytes() for p in paths)
    assert a == b


def test_small_file_is_a_prefix_of_a_larger_one(small_shapes_h5):
    bigger = generate_shapes(n_train=350, n_valid=1, n_test=1, n_single=1, progress=False)["train"]
    with h5py.File(small_shapes_h5, "r") as f:
        np.testing.assert_array_equal(f["features"][:300], bigger["features"][:300])
        np.testing.assert_array_equal(f["mask"][:300], bigger["mask"][:300])


def placements(owned, on):
    """(kind, y, x) of every shape that covers the `owned` pixels and lies within the `on` pixels."""
    found = []
    for kind, shape in enumerate(SHAPES):
        h, w = shape.shape
        for y in range(21 - h):
            for x in range(21 - w):
                placed = np.zeros((20, 20), dtype=bool)
                placed[y:y + h, x:x + w] = shape
                if np.all(placed[owned]) and np.all(on[placed]):
                    found.append((kind, y, x))
    return found


def test_three_shapes_per_image_and_mask_rows(small_shapes_h5):
    with h5py.File(small_shapes_h5, "r") as f:
        features, masks = f["features"][:300], f["mask"][:300]
    third = np.float32(1.0 / 3)
    rows = masks.transpose(0, 2, 1)  # (N, 400, 3): the mask row of each pixel
    one_hot = np.all(np.isin(rows, [0, 1]), axis=2) & (rows.sum(2) == 1)
    shared = np.all(rows == third, axis=2)
    assert np.all(one_hot | shared)
    assert np.all(features[one_hot] == 1)  # owned pixels are on
    assert np.all(shared[features == 0])  # background has 1/3 in every group
    assert set(np.unique(features)) == {0.0, 1.0}
    owners = rows.max(1) == 1  # (N, 3): group k owns a pixel
    assert owners.mean() > 0.95  # occasionally a shape is hidden entirely by the others
    for i in range(40):  # each owning group is one shape, partly covered, inside the image's pixels
        on = features[i].reshape(20, 20) == 1
        covered = np.zeros((20, 20), dtype=int)
        for k in range(3):
            owned = masks[i, k].reshape(20, 20) == 1
            if owned.any():
                found = placements(owned, on)
                assert found, (i, k)
                kind, y, x = found[0]
                h, w = SHAPES[kind].shape
                covered[y:y + h, x:x + w] += SHAPES[kind]
        # pixels that are on but owned by nobody lie where shapes overlap (or a hidden shape sits)
        unowned_on = on & shared[i].reshape(20, 20)
        assert np.all(covered[unowned_on] >= 2) or not owners[i].all()


def test_single_split_has_one_whole_shape(small_shapes_h5):
    with h5py.File(small_shapes_h5, "r") as f:
        features, masks = f["features"][500:600], f["mask"][500:600]
    np.testing.assert_array_equal(masks[:, 0] == 1, features == 1)  # group 0 owns every pixel that is on
    assert not np.any(masks[:, 1:] == 1)
    for i in range(100):
        on = features[i].reshape(20, 20) == 1
        assert any(SHAPES[kind].sum() == on.sum() for kind, _, _ in placements(on, on))


def test_group_masks_values():
    group = np.array([[[0, 1], [2, 3]]], dtype=np.uint8).repeat(10, axis=1).repeat(10, axis=2)  # (1, 20, 20)
    masks = group_masks(group)
    assert masks.shape == (1, 3, 400) and masks.dtype == np.float32
    pixel = {g: np.flatnonzero(group[0].ravel() == g)[0] for g in range(4)}
    np.testing.assert_array_equal(masks[0, :, pixel[0]], np.full(3, np.float32(1 / 3)))
    for g in (1, 2, 3):
        np.testing.assert_array_equal(masks[0, :, pixel[g]], np.eye(3, dtype=np.float32)[g - 1])
