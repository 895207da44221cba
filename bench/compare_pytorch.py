#!/usr/bin/python3
"""ember beside PyTorch on the reference model of bench/bench_train_step.cpp (vocab 64, d_model 128, 4 heads,
2 layers, pre-norm LayerNorm, 4x GELU MLP, learned positions, causal softmax attention, untied head, AdamW).

  compare_pytorch.py time  BUILD_DIR [--threads N ...]   step time of both at T = 128, 512, 1024 (2048 tokens a
                                                         batch), the ratio ember / PyTorch and the model-FLOP rates
  compare_pytorch.py check BUILD_DIR                     identical weights and batch through both, via safetensors:
                                                         loss and every gradient must agree to 1e-4 relative
                                                         (exit 77 when torch is missing, so ctest skips)
  compare_pytorch.py attention BUILD_DIR [--T 4096] [--threads 2] [--reps 5]
                                                         causal attention forward + backward on q, k, v [1, 4, T, 32]:
                                                         PyTorch's explicit q kT / sqrt(d) + mask + softmax + v (and
                                                         F.scaled_dot_product_attention where this torch has it)
                                                         beside ember's flash and naive kernels (bench_mixers point),
                                                         each in a fresh process: median ms and peak RSS growth

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


def status_mib(field):
    """A field of /proc/self/status in MiB ("VmRSS": resident now, "VmHWM": the peak since the last reset)."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss():
    """Resets VmHWM to VmRSS (Linux >= 4.0); False where the kernel refuses it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def torch_attention_point(impl, T, threads, reps):
    """One implementation of causal attention, forward + backward on q, k, v [1, 4, T, 32], in this (fresh) process:
    prints {"ms": median of `reps` runs after a first one, "rss_growth_mib": peak RSS growth from before the inputs
    were made to the end of the runs}, as bench_mixers point measures ember."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    H, d = 4, 32
    rss_before, reset = status_mib("VmRSS"), reset_peak_rss()
    q, k, v = (torch.randn(1, H, T, d, requires_grad=True) for _ in range(3))
    g = torch.randn(1, H, T, d)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)

    def attend():
        if impl == "sdpa":
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        a = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        return a.masked_fill(mask, float("-inf")).softmax(-1) @ v

    def run():
        for t in (q, k, v):
            t.grad = None
        (attend() * g).sum().backward()

    run()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    print(json.dumps({"ms": 1e3 * sorted(times)[len(times) // 2], "rss_growth_mib": status_mib("VmHWM") - rss_before,
                      "rss_peak_reset": reset}))


def fresh_process(args):
    """The JSON line printed by a subprocess running `args`."""
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def attention(build, T, threads, reps):
    print(f"torch {torch.__version__}; BLAS loaded: {blas_in_use()}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print(f"causal attention, forward + backward, q, k, v [1, 4, {T}, 32], {threads} threads; median of {reps} runs "
          "after a first one; memory: peak RSS growth (VmHWM reset through /proc/self/clear_refs) from before the inputs "
          "are made to the end of the runs, in a fresh process each")
    rows = [("torch naive (q kT / sqrt(d), masked_fill, softmax, @ v)",
             fresh_process([sys.executable, __file__, "_torch_point", "naive", str(T), str(threads), str(reps)]))]
    if hasattr(F, "scaled_dot_product_attention"):
        rows.append(("torch F.scaled_dot_product_attention(is_causal=True)",
                     fresh_process([sys.executable, __file__, "_torch_point", "sdpa", str(T), str(threads), str(reps)])))
    else:
        print(f"F.scaled_dot_product_attention: not in torch {torch.__version__} (added in 2.0); skipped")
    for kernel in ("flash", "naive"):
        r = fresh_process([os.path.join(build, "bench", "bench_mixers"), "point", kernel, str(T), "--threads",
                           str(threads), "--reps", str(reps)])
        rows.append((f"ember nn::{kernel}_attention (tensor peak {r['tensor_peak_mib']:.1f} MiB)", r))
    base = rows[0][1]
    if not all(r["rss_peak_reset"] for _, r in rows):
        print("note: /proc/self/clear_refs refused; RSS growth counts only what exceeds the process's earlier peak")
    print("| implementation | ms | peak RSS growth MiB | time / torch naive | memory / torch naive |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['ms']:.1f} | {r['rss_growth_mib']:.1f} | {r['ms'] / base['ms']:.3f} | "
              f"{r['rss_growth_mib'] / base['rss_growth_mib']:.4f} |")
    flash = rows[-2][1]
    ok = flash["ms"] < base["ms"] and flash["rss_growth_mib"] < 100
    print(f"ember flash vs torch naive: {flash['ms'] / base['ms']:.3f}x the time, {flash['rss_growth_mib']:.1f} MiB "
          f"against {base['rss_growth_mib']:.1f} MiB; target (faster, tens of MiB at most): {'met' if ok else 'MISSED'}")


def flag(name, default):
    """The integer after --name on the command line, or `default`."""
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "_torch_point":  # attention's fresh process for one torch variant
        torch_attention_point(sys.argv[2], *(int(a) for a in sys.argv[3:]))
        sys.exit(0)
    if len(sys.argv) < 3 or sys.argv[1] not in ("time", "check", "attention"):
        print(__doc__)
        sys.exit(2)
    build = sys.argv[2]
    if sys.argv[1] == "check":
        sys.exit(check(build))
    if sys.argv[1] == "attention":
        attention(build, flag("--T", 4096), flag("--threads", 2), flag("--reps", 5))
        sys.exit(0)
    threads = [int(a) for a in sys.argv[sys.argv.index("--threads") + 1:]] if "--threads" in sys.argv else [1, 2]
    timing(build, threads)
