"""CompressAI state dict -> Flax params of a zoo model, in three visible steps: rename, transpose, validate.

One table per family maps a CompressAI module prefix to a Flax module path and a layer kind; `LAYER_KINDS`
says how each kind's tensors are renamed and transposed (Conv2d OIHW -> HWIO, ConvTranspose2d [in,out,k,k] ->
[k,k,in,out], the masked conv multiplied by its mask). The result is checked leaf by leaf against the model's
abstract parameter tree; a missing, unexpected or mis-shaped tensor raises a UserError naming it.
Works on numpy arrays; the .pth.tar is read without torch (`torch_file`, a restricted unpickler).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

import jax
import numpy as np

from jaxsemic import weights
from jaxsemic.errors import UserError
from jaxsemic.zoo.cheng2020 import anchor_specs, attention_specs
from jaxsemic.zoo.config import ZOO_NAMES, ZooConfig

Row = tuple[str, str, str]  # (CompressAI prefix, Flax path, layer kind)

_GDN_ANALYSIS: list[Row] = [
    ("g_a.0", "g_a/conv0", "conv"), ("g_a.1", "g_a/gdn0", "gdn"),
    ("g_a.2", "g_a/conv1", "conv"), ("g_a.3", "g_a/gdn1", "gdn"),
    ("g_a.4", "g_a/conv2", "conv"), ("g_a.5", "g_a/gdn2", "gdn"),
    ("g_a.6", "g_a/conv3", "conv"),
]
_GDN_SYNTHESIS: list[Row] = [
    ("g_s.0", "g_s/deconv0", "deconv"), ("g_s.1", "g_s/igdn0", "gdn"),
    ("g_s.2", "g_s/deconv1", "deconv"), ("g_s.3", "g_s/igdn1", "gdn"),
    ("g_s.4", "g_s/deconv2", "deconv"), ("g_s.5", "g_s/igdn2", "gdn"),
    ("g_s.6", "g_s/deconv3", "deconv"),
]
_HYPER: list[Row] = [  # activations sit at the odd indices
    ("h_a.0", "h_a/conv0", "conv"), ("h_a.2", "h_a/conv1", "conv"), ("h_a.4", "h_a/conv2", "conv"),
    ("h_s.0", "h_s/deconv0", "deconv"), ("h_s.2", "h_s/deconv1", "deconv"), ("h_s.4", "h_s/conv2", "conv"),
]
_BOTTLENECK: list[Row] = [("entropy_bottleneck", "entropy_bottleneck", "eb")]
_CONTEXT: list[Row] = [
    ("context_prediction", "context_prediction", "masked"),
    ("entropy_parameters.0", "entropy_parameters/conv0", "conv"),
    ("entropy_parameters.2", "entropy_parameters/conv1", "conv"),
    ("entropy_parameters.4", "entropy_parameters/conv2", "conv"),
]
_SPEC_KIND = {"conv3": "conv", "subpel": "subpel", "rb": "rb", "rbws": "rbws", "rbu": "rbu", "attn": "attn"}


def _cheng_rows(specs: Mapping[str, tuple]) -> list[Row]:
  """Cheng's transforms: Sequential index i <-> `layer{i}`, the kind from the layer spec."""
  return [(f"{t}.{i}", f"{t}/layer{i}", _SPEC_KIND[s[0]])
          for t in ("g_a", "h_a", "h_s", "g_s") for i, s in enumerate(specs[t]) if s[0] != "lrelu"]


def family_table(cfg: ZooConfig) -> list[Row]:
  """The mapping rows of one architecture."""
  if cfg.name == "bmshj2018-factorized":
    return _GDN_ANALYSIS + _GDN_SYNTHESIS + _BOTTLENECK
  if cfg.name in ("bmshj2018-hyperprior", "mbt2018-mean"):
    return _GDN_ANALYSIS + _GDN_SYNTHESIS + _HYPER + _BOTTLENECK
  if cfg.name == "mbt2018":
    return _GDN_ANALYSIS + _GDN_SYNTHESIS + _HYPER + _BOTTLENECK + _CONTEXT
  specs = anchor_specs(cfg.N) if cfg.name == "cheng2020-anchor" else attention_specs(cfg.N)
  return _cheng_rows(specs) + _BOTTLENECK + _CONTEXT


# --- layer kinds: (CompressAI suffix, Flax suffix, transform); "?" marks tensors only some layers have -------

_oihw_to_hwio = weights.TRANSPOSES["conv"]  # the transposes shared by every importer (jaxsemic.weights)
_iohw_to_hwio = weights.TRANSPOSES["deconv"]
_same = weights.TRANSPOSES["id"]


def _conv(src: str, dst: str, optional: bool = False) -> list[tuple[str, str, Callable, bool]]:
  return [(f"{src}.weight", f"{dst}/conv/kernel", _oihw_to_hwio, optional),
          (f"{src}.bias", f"{dst}/conv/bias", _same, optional)]


def _attention_unit(src: str, dst: str) -> list:
  return _conv(f"{src}.conv.0", f"{dst}/conv1") + _conv(f"{src}.conv.2", f"{dst}/conv2") + \
      _conv(f"{src}.conv.4", f"{dst}/conv3")


LAYER_KINDS: dict[str, Callable[[str, str], list]] = {
    "conv": lambda s, d: [(f"{s}.weight", f"{d}/conv/kernel", _oihw_to_hwio, False),
                          (f"{s}.bias", f"{d}/conv/bias", _same, False)],
    "deconv": lambda s, d: [(f"{s}.weight", f"{d}/kernel", _iohw_to_hwio, False),
                            (f"{s}.bias", f"{d}/bias", _same, False)],
    "gdn": lambda s, d: [(f"{s}.beta", f"{d}/beta", _same, False), (f"{s}.gamma", f"{d}/gamma", _same, False)],
    "subpel": lambda s, d: _conv(f"{s}.0", f"{d}/conv"),
    "masked": lambda s, d: [(f"{s}.weight", f"{d}/kernel", None, False), (f"{s}.bias", f"{d}/bias", _same, False)],
    "rb": lambda s, d: _conv(f"{s}.conv1", f"{d}/conv1") + _conv(f"{s}.conv2", f"{d}/conv2") +
    _conv(f"{s}.skip", f"{d}/skip", optional=True),
    "rbws": lambda s, d: _conv(f"{s}.conv1", f"{d}/conv1") + _conv(f"{s}.conv2", f"{d}/conv2") +
    LAYER_KINDS["gdn"](f"{s}.gdn", f"{d}/gdn") + _conv(f"{s}.skip", f"{d}/skip", optional=True),
    "rbu": lambda s, d: _conv(f"{s}.subpel_conv.0", f"{d}/subpel_conv/conv") + _conv(f"{s}.conv", f"{d}/conv") +
    LAYER_KINDS["gdn"](f"{s}.igdn", f"{d}/igdn") + _conv(f"{s}.upsample.0", f"{d}/upsample/conv"),
    "attn": lambda s, d: [e for i in range(3) for e in _attention_unit(f"{s}.conv_a.{i}", f"{d}/conv_a_{i}")] +
    [e for i in range(3) for e in _attention_unit(f"{s}.conv_b.{i}", f"{d}/conv_b_{i}")] +
    _conv(f"{s}.conv_b.3", f"{d}/conv_b_out"),
    "eb": lambda s, d: [(f"{s}.quantiles", f"{d}/quantiles", _same, False)] + [
        (f"{s}.{plural}.{i}", f"{d}/density/{kind}{i}", _same, True)
        for kind, plural in (("matrix", "matrices"), ("bias", "biases"), ("factor", "factors")) for i in range(5)],
}

# Buffers CompressAI stores next to the weights; they are recomputed here (tables) or folded in (mask).
# The bounds (likelihood 1e-9, scale 0.11, GDN reparametrisation) are CompressAI's defaults, the same constants
# as jaxsemic.entropy / jaxsemic.layers.gdn.
_BUFFERS = re.compile(r"(_quantized_cdf|_offset|_cdf_length|scale_table|target|\.mask|scale_bound|"
                      r"reparam\.(pedestal|lower_bound\.bound)|(likelihood_lower_bound|lower_bound_scale)\.bound)$")
# Older CompressAI names of the entropy-bottleneck tensors (`_matrix0`, and `_matrices.0` in the published
# checkpoints), renamed to the ParameterList ones; `.downsample.` is the published name of cheng2020's `skip`
# (both as compressai.zoo.pretrained.rename_key).
_OLD_EB = re.compile(r"^(.*entropy_bottleneck)\._(matrix|matrices|bias|biases|factor|factors)\.?(\d+)$")


def normalise_keys(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """float32 numpy tensors; strips DataParallel's `module.` and renames old entropy-bottleneck keys."""
  out = {}
  for k, v in state.items():
    k = k[len("module."):] if k.startswith("module.") else k
    m = _OLD_EB.match(k)
    if m:
      plural = {"matrix": "matrices", "bias": "biases", "factor": "factors"}.get(m.group(2), m.group(2))
      k = f"{m.group(1)}.{plural}.{m.group(3)}"
    k = k.replace(".downsample.", ".skip.")
    out[k] = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
  return out


def infer_config(arch: str, state: Mapping[str, np.ndarray]) -> ZooConfig:
  """N and M read off the state dict (as CompressAI's `from_state_dict`)."""
  if arch not in ZOO_NAMES:
    raise UserError(f"unknown architecture {arch!r}; choose one of {', '.join(ZOO_NAMES)}")
  first, last = ("g_a.0.conv1.weight", None) if arch.startswith("cheng2020") else ("g_a.0.weight", "g_a.6.weight")
  for key in (first, last):
    if key is not None and key not in state:
      raise UserError(f"not a CompressAI {arch} state dict: tensor {key!r} is missing")
  n = int(state[first].shape[0])
  return ZooConfig(arch, n, n if last is None else int(state[last].shape[0]))


def convert(state: Mapping[str, Any], cfg: ZooConfig, abstract: Mapping[str, Any]) -> dict:
  """Flax params for `cfg` from a CompressAI state dict; `abstract` is the model's eval_shape param tree."""
  state = normalise_keys(state)
  want = {"/".join(str(getattr(k, "key", k)) for k in p) for p, _ in jax.tree_util.tree_leaves_with_path(abstract)}
  renamed, used = {}, set()
  for src, dst, kind in family_table(cfg):  # rename (this family's table) and transpose
    for s_key, d_key, fn, optional in LAYER_KINDS[kind](src, dst):
      if optional and d_key not in want:
        continue
      if s_key not in state:
        raise UserError(f"CompressAI {cfg.name} state dict is missing tensor {s_key!r} (for {d_key})")
      value = state[s_key]
      if fn is None:  # the masked conv: apply CompressAI's mask, then OIHW -> HWIO
        value = _oihw_to_hwio(value * state.get(s_key[:-len("weight")] + "mask", 1.0))
      else:
        value = fn(value)
      renamed[tuple(d_key.split("/"))] = (s_key, value)
      used.add(s_key)
  extra = sorted(k for k in state if k not in used and not _BUFFERS.search(k))
  if extra:
    raise UserError(f"unexpected tensor {extra[0]!r} in the state dict ({len(extra)} in all): "
                    f"is --arch {cfg.name} right?")
  return weights.validate(renamed, abstract, hint=f" (a {cfg.name} model with N={cfg.N}, M={cfg.M})")


def load_state_dict_file(path: str) -> dict[str, Any]:
  """Reads a CompressAI checkpoint (a state dict, or a training checkpoint holding one under `state_dict`)."""
  from jaxsemic.zoo import torch_file  # pylint: disable=import-outside-toplevel
  obj = torch_file.load(path)
  if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
    obj = obj["state_dict"]
  if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
    raise UserError(f"{path} does not hold a state dict (got {type(obj).__name__})")
  return obj
