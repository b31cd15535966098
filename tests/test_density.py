"""The density module against its references: the sketch converges to the exact kernel sum, merging, sampling, embeddings."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from datasum.config import rng
from datasum.density import (EmbeddingCache, NgramEmbedder, RaceSketch, density_sample, embed, exact_density,
                             inverse_density_sample, lsh_kernel, scores)


def naive_density(points, bandwidth):
    distance = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    return lsh_kernel(distance, bandwidth).sum(1)


def test_kernel_is_the_collision_probability():
    generator = rng(1, "test kernel")
    w, b = generator.standard_normal((400_000, 3)), generator.uniform(0, 0.5, 400_000)
    x, y = np.zeros(3), np.array([0.3, 0.4, 0.0])          # distance 0.5
    same = np.floor((w @ x + b) / 0.5) == np.floor((w @ y + b) / 0.5)
    assert abs(same.mean() - lsh_kernel(0.5, 0.5)) < 4e-3


def test_exact_density_matches_the_naive_sum():
    points = rng(2).standard_normal((80, 6))
    np.testing.assert_allclose(exact_density(points, 0.7, block=9), naive_density(points, 0.7), rtol=1e-6)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), dim=st.integers(2, 8), bandwidth=st.floats(0.3, 3.0))
def test_sketch_converges_to_the_exact_kernel_sum_as_rows_grow(seed, dim, bandwidth):
    points = rng(seed, "points").standard_normal((40, dim))
    exact = exact_density(points, bandwidth)
    error = {rows: np.abs(scores(points, rows, 1 << 14, bandwidth, seed) - exact).mean() for rows in (20, 2000)}
    assert error[2000] < error[20]
    assert error[2000] < 0.12 * np.sqrt(exact.mean())       # O(1/sqrt(rows)) of the kernel sum's scale


def test_score_is_unbiased_over_seeds():
    points = rng(3).standard_normal((30, 4))
    mean = np.mean([scores(points, 50, 1 << 14, 1.0, s) for s in range(40)], axis=0)
    np.testing.assert_allclose(mean, naive_density(points, 1.0), atol=0.15 * np.sqrt(naive_density(points, 1.0).mean()))


@pytest.mark.parametrize("split,chunks", [(50, (16, 16, 16)), (37, (7, 11, 64)), (1, (5, 3, 128))])
def test_merging_two_half_sketches_equals_the_sketch_of_the_whole(split, chunks):
    points = rng(4).standard_normal((120, 384)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    whole = RaceSketch(384, 300, 2000, 0.05, seed=5, chunk=chunks[2]).add(points)
    merged = RaceSketch(384, 300, 2000, 0.05, seed=5, chunk=chunks[0]).add(points[:split]).merge(
        RaceSketch(384, 300, 2000, 0.05, seed=5, chunk=chunks[1]).add(points[split:]))
    np.testing.assert_array_equal(merged.counts, whole.counts)
    assert merged.points == 120
    np.testing.assert_array_equal(merged.score(points), whole.score(points))


def test_merge_refuses_sketches_that_hash_differently():
    with pytest.raises(ValueError, match="hash differently"):
        RaceSketch(4, 10, 100, 1.0, seed=0).merge(RaceSketch(4, 10, 100, 0.5, seed=0))


def test_bad_embeddings_are_clear_errors():
    sketch = RaceSketch(3, 10, 100, 1.0)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"): sketch.add(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"): sketch.add(np.zeros(3))
    bad = np.zeros((10, 3)); bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="row 7: NaN"): RaceSketch(3, 10, 100, 1.0, chunk=3).add(bad)
    with pytest.raises(ValueError, match="non-empty"): scores(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="bandwidth"): RaceSketch(3, bandwidth=0.0)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 200), share_=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_sampling_never_repeats_an_item_and_respects_the_size(n, share_, seed):
    density = rng(seed, "density").uniform(1, 50, n)
    size = int(round(share_ * n))
    picked = inverse_density_sample(density, size, seed)
    assert len(picked) == size and len(np.unique(picked)) == size
    assert picked.min(initial=0) >= 0 and picked.max(initial=0) < n
    np.testing.assert_array_equal(picked, inverse_density_sample(density, size, seed))   # same seed, same sample


def test_sampling_follows_inverse_density_without_replacement():
    density = np.array([1.0, 2.0, 4.0])
    first = np.bincount([inverse_density_sample(density, 1, s)[0] for s in range(6000)], minlength=3) / 6000
    np.testing.assert_allclose(first, (1 / density) / (1 / density).sum(), atol=0.02)
    # second draw given the first: P(second = 1 | first = 0) = (1/2) / (1/2 + 1/4)
    pairs = [tuple(inverse_density_sample(density, 2, s)) for s in range(6000)]
    after0 = [b for a, b in pairs if a == 0]
    assert abs(np.mean(np.array(after0) == 1) - 2 / 3) < 0.03


def test_different_seeds_give_different_samples_and_bad_densities_are_refused():
    density = np.ones(100)
    assert not np.array_equal(density_sample(density, 0.1, 0), density_sample(density, 0.1, 1))
    with pytest.raises(ValueError, match="position 2"): inverse_density_sample(np.array([1.0, 1.0, np.nan]), 1)
    with pytest.raises(ValueError, match="size"): inverse_density_sample(np.ones(3), 4)
    with pytest.raises(ValueError, match="rate"): density_sample(np.ones(3), 0.0)


def test_ngram_embeddings_are_unit_length_and_see_near_copies(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path))
    texts = ["the quick brown fox jumps over the lazy dog", "the quick brown fox jumped over the lazy dog",
             "completely different words about finance", ""]
    vectors = embed(texts, NgramEmbedder(dim=32))
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    np.testing.assert_array_equal(vectors[3], 0)
    cache = EmbeddingCache(next((tmp_path / "embeddings").iterdir()))
    assert len(cache.get([f"{i}" for i in range(3)])) == 0 and len(list(cache.folder.glob("*.npz"))) == 1
    np.testing.assert_array_equal(embed(texts, NgramEmbedder(dim=32)), vectors)


def test_minilm_embeddings(tmp_path):
    pytest.importorskip("transformers")
    from datasum.assets import AssetError
    from datasum.density import MiniLM
    try: model = MiniLM(max_length=64, batch_size=2).load()
    except (AssetError, OSError) as error: pytest.skip(f"MiniLM not available: {error}")
    sentences = ["A cat sleeps on the sofa.", "The kitten is napping on the couch.", "Interest rates rose again in March."]
    vectors = model.embed(sentences)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    np.testing.assert_allclose(model.embed(sentences[2:])[0], vectors[2], atol=1e-4)   # padding is masked out
