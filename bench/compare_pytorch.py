#!/usr/bin/python3
"""ember beside PyTorch on the reference model of bench/bench_train_step.cpp (vocab 64, d_model 128, 4 heads,
2 layers, pre-norm LayerNorm, 4x GELU MLP, learned positions, causal softmax attention, untied head, AdamW).

  compare_pytorch.py time  BUILD_DIR [--threads N ...]   step time of both at T = 128, 512, 1024 (2048 tokens a
                                                         batch), the ratio ember / PyTorch and the model-FLOP rates
  compare_pytorch.py check BUILD_DIR                     identical weights and batch through both, via safetensors:
                                                         loss and every gradient must agree to 1e-4 relative
                                                         (exit 77 when torch is missing, so ctest skips)

Run with Debian's python3-torch (/usr/bin/python3). Debian's torch links the reference BLAS unless the
libblas.so.3 alternative points at OpenBLAS; `time` prints which BLAS the process loaded.
"""
import json, math, os, struct, subprocess, sys, tempfile, time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("SKIP: python3-torch is not installed (apt-get install python3-torch)")
    sys.exit(77)

V, D, H, L = 64, 128, 4, 2


class Block(torch.nn.Module):
    def __init__(self, T):
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (torch.nn.Linear(D, D) for _ in range(4))
        self.up_proj, self.down_proj = torch.nn.Linear(D, 4 * D), torch.nn.Linear(4 * D, D)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1), persistent=False)

    def forward(self, x):
        B, T, _ = x.shape
        h = self.norm1(x)
        q, k, v = (p(h).view(B, T, H, D // H).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        a = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)
        a = a.masked_fill(self.mask[:T, :T], float("-inf")).softmax(-1)
        x = x + self.o_proj((a @ v).transpose(1, 2).reshape(B, T, D))
        return x + self.down_proj(F.gelu(self.up_proj(self.norm2(x))))


class Model(torch.nn.Module):
    def __init__(self, T):
        super().__init__()
        self.tok_emb, self.pos_emb = torch.nn.Embedding(V, D), torch.nn.Embedding(T, D)
        self.layers = torch.nn.ModuleList(Block(T) for _ in range(L))
        self.norm, self.head = torch.nn.LayerNorm(D), torch.nn.Linear(D, V, bias=False)

    def forward(self, ids):
        x = self.tok_emb(ids) + self.pos_emb(torch.arange(ids.shape[1]))
        for b in self.layers:
            x = b(x)
        return self.head(self.norm(x))

    def ember_names(self):
        """PyTorch parameter names -> ember's (mlp and mixer live in submodules there)."""
        out = {}
        for name, p in self.named_parameters():
            parts = name.split(".")
            if parts[0] == "layers":
                sub = "mixer" if parts[2].endswith("_proj") and parts[2][0] in "qkvo" else "mlp"
                if parts[2].startswith("norm"):
                    sub = None
                parts = parts[:2] + ([sub] if sub else []) + parts[2:]
            out[".".join(parts)] = p
        return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        code = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dtype = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}[e["dtype"]]
        b, end = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + b:8 + n + end]), dtype=dtype).reshape(e["shape"])
    return out


def check(build):
    torch.manual_seed(0)
    T, B = 64, 4
    model = Model(T)
    ids, targets = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))
    loss = F.cross_entropy(model(ids).reshape(-1, V), targets.reshape(-1))
    loss.backward()
    names = model.ember_names()
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
        write_safetensors(inp, {"ids": ids, "targets": targets, **{"param." + n: p for n, p in names.items()}})
        subprocess.run([os.path.join(build, "bench", "reference_step"), inp, out], check=True)
        got = read_safetensors(out)
    worst, failures = 0.0, []
    rel = abs(got["loss"].item() - loss.item()) / abs(loss.item())
    worst = max(worst, rel)
    if rel > 1e-4:
        failures.append(f"loss: ember {got['loss'].item()} torch {loss.item()}")
    for n, p in names.items():
        g = got["grad." + n]
        # The key bias's true gradient is 0 (softmax ignores a constant added to a row), so its float32
        # values are rounding noise near 1e-9: measure every gradient against at least 1e-3.
        rel = ((g - p.grad).abs().max() / p.grad.abs().max().clamp_min(1e-3)).item()
        worst = max(worst, rel)
        if rel > 1e-4:
            failures.append(f"grad.{n}: max relative difference {rel:.2e}")
    print(f"loss {loss.item():.6f}; {len(names)} gradients; worst relative difference {worst:.2e} (limit 1e-4)")
    for f in failures:
        print("MISMATCH", f)
    return 1 if failures else 0


def torch_step_ms(T, threads, reps):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    B = 2048 // T
    model = Model(T)
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.01)
    ids, targets = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(ids).reshape(-1, V), targets.reshape(-1)).backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return 1e3 * sorted(times)[len(times) // 2]


def ember_step_ms(build, threads):
    out = subprocess.run([os.path.join(build, "bench", "bench_train_step"), f"--benchmark_filter=threads:{threads}/",
                          "--benchmark_format=json", "--benchmark_min_time=2", "--benchmark_repetitions=3",
                          "--benchmark_report_aggregates_only=true"], check=True, capture_output=True, text=True)
    res = {}
    for b in json.loads(out.stdout)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            T = int(b["run_name"].split("T:")[1].split("/")[0])
            res[T] = (b["real_time"], b["model_GFLOPS"])
    return res


def blas_in_use():
    maps = open(f"/proc/{os.getpid()}/maps").read()
    libs = sorted({line.split()[-1] for line in maps.splitlines() if "blas" in line.lower() and "/" in line})
    return ", ".join(libs) or "none found"


def timing(build, threads_list):
    print(f"torch {torch.__version__}; BLAS loaded: {blas_in_use()}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print("| T | batch | threads | ember ms | torch ms | ratio | ember model GFLOP/s | target |")
    print("|---|---|---|---|---|---|---|---|")
    for threads in threads_list:
        ember = ember_step_ms(build, threads)
        for T in (128, 512, 1024):
            t_ms = torch_step_ms(T, threads, 10)
            e_ms, gflops = ember[T]
            r = e_ms / t_ms
            print(f"| {T} | {2048 // T} | {threads} | {e_ms:.1f} | {t_ms:.1f} | {r:.2f} | {gflops:.1f} | "
                  f"{'met' if r <= 1.0 else 'MISSED'} |")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("time", "check"):
        print(__doc__)
        sys.exit(2)
    build = sys.argv[2]
    if sys.argv[1] == "check":
        sys.exit(check(build))
    threads = [int(a) for a in sys.argv[sys.argv.index("--threads") + 1:]] if "--threads" in sys.argv else [1, 2]
    timing(build, threads)
