# safetensors interop with the real library (safetensors + torch):
#  1. files written by antibody (single, and sharded with an index) load identically with
#     safetensors, byte-identical to what the library itself writes for the same tensors,
#     with f16/bf16 conversions bit-equal to torch's, and shards split like huggingface_hub;
#  2. files written by the library (metadata, odd shapes, 0-d, empty, many dtypes, sharded
#     by huggingface_hub) read identically in antibody;
#  3. corrupted files: antibody rejects what the library rejects.
import json, os, shutil, struct, subprocess, sys, tempfile
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file, save

BUILD = os.environ.get("ANTIBODY_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
EXE = os.path.join(BUILD, "tests", "test_safetensors")
compared = 0
mismatches = 0


def check(ok, what):
    global compared, mismatches
    compared += 1
    if not ok:
        mismatches += 1
        print("MISMATCH:", what)


def dump(path):
    r = subprocess.run([EXE, "--dump", path], capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip()
    return json.loads(r.stdout), ""


def raw_bytes(t):
    t = t.contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        return t.view(torch.int16).numpy().tobytes()
    if t.dtype == torch.bool:
        return t.to(torch.uint8).numpy().tobytes()
    if t.dtype in (torch.uint16, torch.uint32, torch.uint64):
        return t.view({torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}[t.dtype]).numpy().tobytes()
    return t.numpy().tobytes()


def same_f32(got, t):
    want = t.to(torch.float32).reshape(-1).numpy()
    g = np.array(got, dtype=np.float32)
    return g.shape == want.shape and g.tobytes() == want.tobytes() if not np.isnan(want).any() else \
        g.shape == want.shape and np.array_equal(np.isnan(g), np.isnan(want)) and np.array_equal(g[~np.isnan(g)], want[~np.isnan(want)])


def compare_dump(d, tensors, label):
    names = [t["name"] for t in d["tensors"]]
    check(sorted(names) == sorted(tensors), f"{label}: names {sorted(names)} vs {sorted(tensors)}")
    for t in d["tensors"]:
        if t["name"] not in tensors:
            continue
        ref = tensors[t["name"]]
        check(t["shape"] == list(ref.shape), f"{label}/{t['name']}: shape {t['shape']} vs {list(ref.shape)}")
        check(bytes.fromhex(t["hex"]) == raw_bytes(ref), f"{label}/{t['name']}: bytes differ")
        if "f32" in t:
            check(same_f32(t["f32"], ref), f"{label}/{t['name']}: f32 conversion differs from torch")


tmp = tempfile.mkdtemp(prefix="antibody-st-oracle-")

# ---- 1. antibody -> library
out = os.path.join(tmp, "ab")
r = subprocess.run([EXE, "--write", out], capture_output=True, text=True)
check(r.returncode == 0, "--write failed: " + r.stderr)
single = os.path.join(out, "single.safetensors")
lib = load_file(single)
with safe_open(single, "pt") as f:
    check(f.metadata() == {"format": "pt"}, f"metadata {f.metadata()}")
src = lib["src.f32"].reshape(-1)
check(torch.equal(lib["layers.0.h"].reshape(-1).view(torch.int16), src.half().view(torch.int16)), "f16 rounding differs from torch")
# torch's scalar path writes NaN as 0x7fc0, its vector path as 0xffff: compare NaN as NaN
mine_b, torch_b = lib["layers.0.b"], src.bfloat16()
nan = torch.isnan(torch_b)
check(torch.equal(torch.isnan(mine_b), nan) and
      torch.equal(mine_b[~nan].view(torch.int16), torch_b[~nan].view(torch.int16)), "bf16 rounding differs from torch")
check(lib["scalar"].shape == () and lib["scalar"].item() == 3.25, "0-d tensor")
check(lib["empty"].shape == (0, 4), "empty tensor")
check(lib["mask"].dtype == torch.bool and lib["mask"].tolist() == [False, True, False], "bool")
# the library writing the same tensors gives the same bytes
mine = open(single, "rb").read()
theirs = save(lib, metadata={"format": "pt"})
check(mine == theirs, f"file bytes differ from the library's ({len(mine)} vs {len(theirs)})")

sharded = os.path.join(out, "sharded")
idx = json.load(open(os.path.join(sharded, "model.safetensors.index.json")))
merged = {}
for fname in sorted(set(idx["weight_map"].values())):
    part = load_file(os.path.join(sharded, fname))
    for k, v in part.items():
        check(idx["weight_map"][k] == fname, f"{k} in {fname} but index says {idx['weight_map'].get(k)}")
        merged[k] = v
check(sorted(merged) == sorted(lib), "sharded set differs in names")
for k in lib:
    check(torch.equal(merged[k].view(-1).view(torch.uint8) if merged[k].numel() else merged[k], lib[k].view(-1).view(torch.uint8) if lib[k].numel() else lib[k]), f"sharded {k} differs")
check(idx["metadata"]["total_size"] == sum(v.numel() * v.element_size() for v in lib.values()), "total_size")
try:
    from huggingface_hub import split_torch_state_dict_into_shards
    # the writer's input order (fixed_set in test_safetensors.c)
    order = ["src.f32", "layers.0.h", "layers.0.b", "z.f64", "ids", "i32", "i16", "i8", "u8", "mask", "scalar", "empty"]
    split = split_torch_state_dict_into_shards({k: lib[k] for k in order}, max_shard_size=200,
                                               filename_pattern="model{suffix}.safetensors")
    check(split.tensor_to_filename == idx["weight_map"], f"shard split differs from huggingface_hub: {split.tensor_to_filename}")
except ImportError:
    print("huggingface_hub not available, shard split not compared")
    check(False, "huggingface_hub missing from the oracle venv")

# ---- 2. library -> antibody
g = torch.Generator().manual_seed(0)
tensors = {
    "w.f32": torch.randn(3, 5, 7, generator=g),
    "w.f16": (torch.randn(4, 9, generator=g) * 1000).half(),
    "w.bf16": torch.randn(2, 3, 1, 5, generator=g).bfloat16(),
    "w.f64": torch.randn(6, generator=g).double(),
    "special.f16": torch.tensor([float("inf"), float("-inf"), float("nan"), 6e-8, -0.0, 65504.0]).half(),
    "special.bf16": torch.tensor([float("inf"), float("nan"), 1e-40, -3e38]).bfloat16(),
    "scalar": torch.tensor(2.5),
    "empty": torch.zeros(0, 3),
    "empty.i64": torch.zeros(5, 0, dtype=torch.int64),
    "ids": torch.arange(-3, 7, dtype=torch.int64) * 10**12,
    "i32": torch.arange(-4, 4, dtype=torch.int32) * 70000,
    "i16": torch.arange(-5, 5, dtype=torch.int16) * 3000,
    "i8": torch.arange(-128, 128, 37, dtype=torch.int8),
    "u8": torch.arange(0, 256, 51, dtype=torch.uint8),
    "mask": torch.tensor([True, False, True, True]),
    "u16": torch.arange(0, 5, dtype=torch.int32).to(torch.uint16) * 1000,
    "u32": torch.tensor([0, 1, 4000000000], dtype=torch.int64).to(torch.uint32),
    "u64": torch.tensor([0, 2**62], dtype=torch.int64).to(torch.uint64),
    "odd/name with spaces.é": torch.ones(1, 1, 1, 1, 1, 1, 1, 1),
}
lib_file = os.path.join(tmp, "lib.safetensors")
save_file(tensors, lib_file, metadata={"format": "pt", "note": "made by the library"})
d, err = dump(lib_file)
check(d is not None, "antibody rejects a library file: " + err)
if d:
    check(d["format"] == "pt", "metadata format")
    compare_dump(d, tensors, "lib")

# sharded by huggingface_hub / transformers' writer
try:
    from huggingface_hub import save_torch_state_dict
    hdir = os.path.join(tmp, "hf")
    os.makedirs(hdir)
    big = {f"model.layers.{i}.w": torch.randn(64, 32, generator=g).bfloat16() for i in range(6)}
    big["lm_head.weight"] = torch.randn(100, 64, generator=g)
    save_torch_state_dict(big, hdir, max_shard_size=10000)
    check(os.path.exists(os.path.join(hdir, "model.safetensors.index.json")), "hub wrote no index")
    d, err = dump(hdir)
    check(d is not None, "antibody rejects a hub-sharded dir: " + err)
    if d:
        compare_dump(d, big, "hub-sharded")
except ImportError:
    check(False, "huggingface_hub missing")

# ---- 3. corrupted files: whatever the library rejects, antibody rejects, naming the file
def lib_accepts(path):
    try:
        with safe_open(path, "pt") as f:
            for k in f.keys():
                f.get_tensor(k)
        return True
    except Exception:
        return False

good = open(lib_file, "rb").read()
n = struct.unpack("<Q", good[:8])[0]
rng = np.random.default_rng(1)
agree_rejects = 0
for i in range(300):
    b = bytearray(good)
    kind = i % 3
    if kind == 0:
        for _ in range(1 + i % 3):
            b[int(rng.integers(0, 8 + n))] = int(rng.integers(0, 256))
    elif kind == 1:
        b = b[: int(rng.integers(0, len(b)))]
    else:
        pos = int(rng.integers(8, 8 + n))
        b[pos:pos + 1] = bytes([ord("0") + int(rng.integers(0, 10))])
    p = os.path.join(tmp, f"corrupt{i}.safetensors")
    open(p, "wb").write(bytes(b))
    theirs = lib_accepts(p)
    mine, err = dump(p)
    if not theirs:
        check(mine is None and p in err, f"corrupt{i}: library rejects, antibody {'accepts' if mine else 'message lacks path: ' + err}")
        agree_rejects += mine is None
print(f"{agree_rejects} corrupted files rejected by both")
shutil.rmtree(tmp, ignore_errors=True)
print(f"{compared} compared, {mismatches} mismatches")
sys.exit(1 if mismatches else 0)
