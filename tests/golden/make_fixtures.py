# Regenerate the golden fixtures with Debian's PyTorch (not a pyenv python):
#     /usr/bin/python3 tests/golden/make_fixtures.py
# It (re)writes tests/fixtures/*.safetensors, which tests/layers/test_golden.cpp reads.
"""Golden fixtures for ember's layers, computed by PyTorch in float64.

Each case builds a layer (or a whole language model) in PyTorch with ember's parameter names and
conventions, runs it on a fixed random input, and writes one safetensors file holding

    input            the input (float64, or int64 token ids)
    param.<name>     every weight, named as ember's state_dict names it
    out              the output
    w                fixed random weights of the same shape as out
    grad.input       d loss / d input, loss = sum(out * w)   (float inputs only)
    grad.param.<n>   d loss / d param.<n>

plus case-specific extras (target, ...) and a `__metadata__` entry describing the configuration.
Everything is float64 so the C++ side can compare at 1e-10. ember's conventions written out here:
Linear weights are [out, in]; RoPE is rotate-half (pairs (i, i + d/2), theta_i = base^(-2i/d));
attention is causal with softmax(q k^T / sqrt(d)); GELU is the exact erf form; RMSNorm is
x / sqrt(mean(x^2) + eps) * g (torch 1.13 has no nn.RMSNorm); blocks are pre-norm GPT-2 style.

The safetensors package is not installed, so a small writer below produces the format by hand:
an 8-byte little-endian header length N, N bytes of JSON padded with spaces to a multiple of 8,
then the raw little-endian tensor data in header order.
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "fixtures")
DT = torch.float64


# ----------------------------------------------------------------------------------------------
# safetensors writer
# ----------------------------------------------------------------------------------------------
def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, torch.Tensor) in file order; metadata: dict str -> str."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors:
        t = t.detach().contiguous()
        if t.dtype == torch.float64:
            code, fmt = "F64", "<f8"
        elif t.dtype == torch.int64:
            code, fmt = "I64", "<i8"
        else:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        data = t.numpy().astype(fmt).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def leaf(t):
    return t.detach().clone().to(DT).requires_grad_(True)


def save_case(name, inputs, params, fn, extras=(), metadata=None):
    """inputs: list of (name, tensor); the first is "input". params: dict name -> leaf tensor.

    fn(*input_tensors) -> out. Writes the inputs, params, out, w and the gradients of sum(out * w).
    """
    gen = torch.Generator().manual_seed(abs(hash_name(name)))
    out = fn(*[t for _, t in inputs])
    w = torch.randn(out.shape, dtype=DT, generator=gen)
    loss = (out * w).sum()
    float_inputs = [(n, t) for n, t in inputs if t.dtype == DT]
    wrt = [t for _, t in float_inputs] + list(params.values())
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    tensors = list(inputs) + [(f"param.{n}", p) for n, p in params.items()] + list(extras)
    tensors += [("out", out), ("w", w)]
    names = [f"grad.{n}" for n, _ in float_inputs] + [f"grad.param.{n}" for n in params]
    for n, g, t in zip(names, grads, wrt):
        tensors.append((n, g if g is not None else torch.zeros_like(t)))
    path = os.path.join(OUT_DIR, f"{name}.safetensors")
    write_safetensors(path, tensors, metadata)
    print(f"{path}: {os.path.getsize(path)} bytes, {len(tensors)} tensors")


def hash_name(name):
    # A stable (unlike Python's hash()) seed per case.
    h = 0
    for c in name.encode():
        h = (h * 131 + c) % (2**31 - 1)
    return h


# ----------------------------------------------------------------------------------------------
# ember's layers, written out in PyTorch with ember's parameter names
# ----------------------------------------------------------------------------------------------
def randn(*shape, scale=1.0):
    return torch.randn(*shape, dtype=DT) * scale


def linear_params(prefix, d_in, d_out, bias, scale=None):
    scale = 1.0 / math.sqrt(d_in) if scale is None else scale
    p = {f"{prefix}weight": leaf(randn(d_out, d_in, scale=scale))}
    if bias:
        p[f"{prefix}bias"] = leaf(randn(d_out, scale=0.3))
    return p


def lin(x, p, prefix):
    return F.linear(x, p[f"{prefix}weight"], p.get(f"{prefix}bias"))


def norm_params(prefix, d, kind, bias):
    p = {f"{prefix}weight": leaf(1.0 + randn(d, scale=0.2))}
    if kind == "layernorm" and bias:
        p[f"{prefix}bias"] = leaf(randn(d, scale=0.2))
    return p


def rms_norm(x, g, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g


def norm(x, p, prefix, kind, eps=1e-5):
    if kind == "layernorm":
        w = p[f"{prefix}weight"]
        return F.layer_norm(x, (x.shape[-1],), w, p.get(f"{prefix}bias"), eps)
    return rms_norm(x, p[f"{prefix}weight"], eps)


def mlp_params(prefix, d, hidden, kind, bias):
    p = {}
    if kind == "swiglu":
        p.update(linear_params(f"{prefix}gate_proj.", d, hidden, bias))
    p.update(linear_params(f"{prefix}up_proj.", d, hidden, bias))
    p.update(linear_params(f"{prefix}down_proj.", hidden, d, bias))
    return p


def mlp(x, p, prefix, kind):
    if kind == "gelu":
        return lin(F.gelu(lin(x, p, f"{prefix}up_proj."), approximate="none"), p, f"{prefix}down_proj.")
    return lin(F.silu(lin(x, p, f"{prefix}gate_proj.")) * lin(x, p, f"{prefix}up_proj."), p, f"{prefix}down_proj.")


def rope(x, base=10000.0):
    """x: [B, H, T, d] at positions 0..T-1, rotate-half pairing (i, i + d/2)."""
    T, d = x.shape[2], x.shape[3]
    half = d // 2
    i = torch.arange(half, dtype=DT)
    theta = base ** (-2.0 * i / d)
    ang = torch.arange(T, dtype=DT)[:, None] * theta[None, :]
    c, s = torch.cos(ang), torch.sin(ang)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * c - b * s, a * s + b * c], dim=-1)


def attn_params(prefix, d, bias):
    p = {}
    for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
        p.update(linear_params(f"{prefix}{n}.", d, d, bias))
    return p


def attention(x, p, prefix, heads, use_rope):
    """x: [B, T, D] -> [B, T, D], causal multi-head attention written out."""
    B, T, D = x.shape
    hd = D // heads

    def split(t):
        return t.view(B, T, heads, hd).transpose(1, 2)

    q, k, v = (split(lin(x, p, f"{prefix}{n}.")) for n in ("q_proj", "k_proj", "v_proj"))
    if use_rope:
        q, k = rope(q), rope(k)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(mask, float("-inf"))
    o = torch.softmax(scores, dim=-1) @ v
    return lin(o.transpose(1, 2).reshape(B, T, D), p, f"{prefix}o_proj.")


# ----------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------
def layer_cases():
    x = leaf(randn(2, 3, 5))
    for bias in (True, False):
        p = linear_params("", 5, 4, bias)
        save_case("linear" if bias else "linear_nobias", [("input", x)], p, lambda x: lin(x, p, ""),
                  metadata={"layer": "Linear(5, 4)", "bias": bias})

    ids = torch.tensor([[0, 3, 6], [3, 3, 1]], dtype=torch.int64)
    p = {"weight": leaf(randn(7, 4))}
    save_case("embedding", [("input", ids)], p, lambda ids: F.embedding(ids, p["weight"]),
              metadata={"layer": "Embedding(7, 4)"})

    x = leaf(randn(2, 3, 6, scale=2.0) + 0.5)
    p = norm_params("", 6, "layernorm", True)
    save_case("layer_norm", [("input", x)], p, lambda x: norm(x, p, "", "layernorm"),
              metadata={"layer": "LayerNorm(6)", "eps": "1e-5"})
    p = norm_params("", 6, "rmsnorm", False)
    save_case("rms_norm", [("input", x)], p, lambda x: norm(x, p, "", "rmsnorm"),
              metadata={"layer": "RMSNorm(6)", "eps": "1e-5"})

    x = leaf(randn(2, 3, 6))
    p = mlp_params("", 6, 10, "gelu", True)
    save_case("mlp_gelu", [("input", x)], p, lambda x: mlp(x, p, "", "gelu"),
              metadata={"layer": "MLP(d=6, hidden=10, gelu, bias)"})
    p = mlp_params("", 6, 10, "swiglu", False)
    save_case("mlp_swiglu", [("input", x)], p, lambda x: mlp(x, p, "", "swiglu"),
              metadata={"layer": "MLP(d=6, hidden=10, swiglu, no bias)"})

    x = leaf(randn(2, 5, 8))
    for use_rope in (False, True):
        p = attn_params("", 8, True)
        save_case("mha_rope" if use_rope else "mha", [("input", x)], p,
                  lambda x: attention(x, p, "", 2, use_rope),
                  metadata={"layer": "MultiHeadAttention(d_model=8, heads=2, bias)", "rope": use_rope,
                            "rope_base": "10000"})


def loss_cases():
    logits = leaf(randn(2, 5, 7, scale=2.0))
    target = torch.tensor([[1, 0, -100, 6, 3], [2, -100, 5, 5, 0]], dtype=torch.int64)
    save_case("cross_entropy", [("input", logits), ("target", target)], {},
              lambda z, y: F.cross_entropy(z.reshape(-1, 7), y.reshape(-1), ignore_index=-100,
                                           label_smoothing=0.1),
              metadata={"loss": "cross_entropy(ignore_index=-100, label_smoothing=0.1), mean"})
    x = leaf(randn(3, 4))
    y = leaf(randn(3, 4))
    save_case("mse", [("input", x), ("target", y)], {}, lambda x, y: F.mse_loss(x, y),
              metadata={"loss": "mse_loss, mean"})


def lm_params(cfg):
    V, D, L = cfg["vocab"], cfg["d_model"], cfg["layers"]
    bias, kind, norm_kind = cfg["bias"], cfg["mlp"], cfg["norm"]
    p = {"tok_emb.weight": leaf(randn(V, D, scale=0.5))}
    if cfg["positions"] == "learned":
        p["pos_emb.weight"] = leaf(randn(cfg["max_len"], D, scale=0.5))
    for i in range(L):
        pre = f"layers.{i}."
        p.update(norm_params(f"{pre}norm1.", D, norm_kind, bias))
        p.update(attn_params(f"{pre}mixer.", D, bias))
        p.update(norm_params(f"{pre}norm2.", D, norm_kind, bias))
        p.update(mlp_params(f"{pre}mlp.", D, cfg["mlp_hidden"], kind, bias))
    p.update(norm_params("norm.", D, norm_kind, bias))
    if not cfg["tie"]:
        p["head.weight"] = leaf(randn(V, D, scale=1.0 / math.sqrt(D)))
    return p


def lm_forward(ids, p, cfg):
    B, T = ids.shape
    h = F.embedding(ids, p["tok_emb.weight"])
    if cfg["positions"] == "learned":
        h = h + p["pos_emb.weight"][:T]
    for i in range(cfg["layers"]):
        pre = f"layers.{i}."
        h = h + attention(norm(h, p, f"{pre}norm1.", cfg["norm"]), p, f"{pre}mixer.", cfg["heads"],
                          cfg["positions"] == "rope")
        h = h + mlp(norm(h, p, f"{pre}norm2.", cfg["norm"]), p, f"{pre}mlp.", cfg["mlp"])
    h = norm(h, p, "norm.", cfg["norm"])
    return F.linear(h, p["tok_emb.weight"] if cfg["tie"] else p["head.weight"])


def lm_cases():
    configs = {
        # The reference model: learned positions, LayerNorm, GELU, untied head, biases on.
        "language_model": dict(vocab=16, d_model=32, layers=2, heads=4, max_len=8, positions="learned",
                               norm="layernorm", mlp="gelu", mlp_hidden=64, tie=False, bias=True),
        # The other choices: RoPE, RMSNorm, SwiGLU, tied head, no biases.
        "language_model_rope": dict(vocab=16, d_model=16, layers=2, heads=2, max_len=8, positions="rope",
                                    norm="rmsnorm", mlp="swiglu", mlp_hidden=24, tie=True, bias=False),
    }
    for name, cfg in configs.items():
        ids = torch.randint(0, cfg["vocab"], (2, 8), dtype=torch.int64)
        p = lm_params(cfg)
        save_case(name, [("input", ids)], p, lambda ids: lm_forward(ids, p, cfg),
                  metadata={k: str(v) for k, v in cfg.items()})


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.manual_seed(20240601)
    layer_cases()
    loss_cases()
    lm_cases()


if __name__ == "__main__":
    main()
