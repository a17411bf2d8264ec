"""Entropy models, integer tables and the range coder."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.entropy import coder, factorized, tables
from jaxsemic.entropy.gaussian import default_scale_table, gaussian_likelihood, scale_index


def test_gaussian_likelihood_matches_erf():
  y, mu, s = 1.3, 0.2, 0.7
  want = 0.5 * (math.erf((y - mu + 0.5) / s / math.sqrt(2)) - math.erf((y - mu - 0.5) / s / math.sqrt(2)))
  got = float(gaussian_likelihood(jnp.float32(y), jnp.float32(mu), jnp.float32(s)))
  assert abs(got - want) < 1e-6


def test_scale_index_picks_smallest_table_scale_not_below():
  table = default_scale_table()
  rng = np.random.default_rng(0)
  s = np.concatenate([[0.01, 0.11, 0.2, 5.0, 1e4], table, np.nextafter(table, np.float32(1e9)),
                      np.exp(rng.uniform(-3, 6, 500))]).astype(np.float32)  # ties and neighbours of ties
  idx = np.asarray(scale_index(jnp.asarray(s), table))
  for si, i in zip(s, idx):
    assert i == min(len(table) - 1, int(np.sum(np.maximum(si, 0.11) > table[:-1])))
  assert idx[0] == 0 and idx[4] == len(table) - 1


def test_tables_are_valid_pmfs():
  t = tables.gaussian_tables(default_scale_table())
  for k in range(len(t.length)):
    n = t.length[k]
    assert t.pmf[k, :n].sum() == 1 << tables.PRECISION
    assert t.pmf[k, :n].min() >= 1 and np.all(t.pmf[k, n:] == 0)
    assert t.offset[k] == -(n - 2) // 2


def test_factorized_tables_cover_the_density():
  mod = factorized.FactorizedPrior(3)
  v = mod.init(jax.random.PRNGKey(0), jnp.zeros((4, 3)))["params"]
  t = tables.factorized_tables({k: np.asarray(a) for k, a in v.items()})
  for c in range(3):
    n = t.length[c]
    assert t.pmf[c, :n].sum() == 1 << tables.PRECISION
    assert t.pmf[c, n - 1] <= 2  # the escape symbol only carries the tail mass ~1e-9
    # Symbols well inside the range get roughly the model's probability.
    vals = np.arange(t.offset[c], t.offset[c] + n - 1, dtype=np.float32)
    lik = np.asarray(mod.apply({"params": v}, np.tile(vals[:, None], (1, 3))))[:, c]
    big = lik > 1e-2
    np.testing.assert_allclose(t.pmf[c, :n - 1][big] / 2 ** 16, lik[big], rtol=1e-2)


def test_coder_round_trip_with_escapes():
  t = tables.gaussian_tables(default_scale_table())
  rng = np.random.default_rng(0)
  idx = rng.integers(0, len(t.length), size=5000)
  vals = np.round(rng.normal(size=5000) * default_scale_table()[idx]).astype(np.int32)
  vals[:6] = [10 ** 6, -10 ** 6, 2 ** 31 - 1, -2 ** 31, 3, -4]  # far outside every table: escaped
  idx[:6] = 0
  c = coder.TableCoder(t)
  enc = coder.new_encoder()
  c.encode(enc, vals, idx)
  data = coder.finish(enc)
  np.testing.assert_array_equal(c.decode(coder.new_decoder(data), idx), vals)
  ideal = -np.sum(np.log2(np.maximum(1e-9, [t.pmf[k, v - t.offset[k]] / 2 ** 16 if 0 <= v - t.offset[k] < t.length[k] - 1 else 1e-9 for k, v in zip(idx[6:], vals[6:])])))
  assert len(data) * 8 <= 1.01 * ideal + 64 * 8 + 6 * 80


def _escape_bytes_one_by_one(values: np.ndarray) -> bytes:
  """The escape code written value by value with Python ints (the definition `coder._encode_raw` vectorises)."""
  enc = coder.new_encoder()
  u = [2 * v if v >= 0 else -2 * v - 1 for v in map(int, values)]
  enc.encode(np.array([x.bit_length() for x in u], np.int32), coder._NBITS)
  chunks = [(x >> (8 * i)) & 0xFF for x in u for i in range((x.bit_length() + 7) // 8)]
  enc.encode(np.array(chunks, np.int32), coder._BYTE)
  return coder.finish(enc)


def test_escape_code_equals_the_value_by_value_definition():
  rng = np.random.default_rng(1)
  vals = np.concatenate([[0, 1, -1, 127, 128, -128, 255, 256, 2 ** 31 - 1, -2 ** 31, 2 ** 24, -2 ** 24 - 1],
                         rng.integers(-2 ** 31, 2 ** 31, 300), rng.integers(-300, 300, 300)]).astype(np.int64)
  enc = coder.new_encoder()
  coder._encode_raw(enc, vals)
  data = coder.finish(enc)
  assert data == _escape_bytes_one_by_one(vals)
  np.testing.assert_array_equal(coder._decode_raw(coder.new_decoder(data), len(vals)), vals)
