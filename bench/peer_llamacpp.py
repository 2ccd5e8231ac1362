"""llama.cpp side of the generation rows (bench/README.md); bench/llamacpp.sh builds it.

    peer_llamacpp.py BIN GGUF_DIR STEP THREADS REPS

STEP is one of antibody's generation steps on the base model (bench_train ... nolora):
  generate_nolora, generate_bf16_nolora    llama-bench -pg 32,128: a 32-token prompt, then 128
                                           tokens one at a time (the time of both, per 128 tokens)
  generate16_nolora, generate16_bf16_nolora  llama-batched-bench -npp 32 -ntg 128 -npl 16: sixteen
                                           sequences decoding together (antibody's 16 prompts
                                           all at once)
Prints one JSON line in bench_train's format: the median seconds of REPS runs, tokens, the
tools' peak RSS, and the CPU seconds per run (user + system of the tool run with 1 + REPS runs
minus the same with 1, over REPS: its loading and warm-up cancel out).
"""
import json
import resource
import statistics
import subprocess
import sys


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd):
    c0 = cpu_children()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"peer_llamacpp.py: {' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest child so far
    return p.stdout, rss, cpu_children() - c0


def main(bin_dir, gguf_dir, step, threads, reps):
    weights = "bf16" if "_bf16" in step else "f32"
    model = f"{gguf_dir}/smollm-{weights}.gguf"
    rec = {"side": "llama.cpp", "shape": "smollm", "step": step, "threads": threads, "weights": weights,
           "reps": reps}
    if step.startswith("generate16"):
        def batched(n):
            return run([f"{bin_dir}/llama-batched-bench", "-m", model, "-c", "3072", "-npp", "32", "-ntg", "128",
                        "-npl", ",".join(["16"] * n), "-t", str(threads), "-tb", str(threads), "--output-format", "jsonl"])
        _, _, cpu1 = batched(1)
        out, rss, cpu = batched(1 + reps)
        runs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if len(runs) != 1 + reps:
            sys.exit(f"peer_llamacpp.py: expected {1 + reps} results from llama-batched-bench, got {len(runs)}")
        runs = runs[1:]  # the first as warm-up, as on antibody's side
        rec.update(seconds=statistics.median(r["t"] for r in runs), cpu_seconds=(cpu - cpu1) / reps,
                   tokens=16 * 128, prompt=32, prompts=16, batch=16, flash_attn=runs[0]["flash_attn"],
                   prefill_s=statistics.median(r["t_pp"] for r in runs))
    else:
        def bench(n):
            return run([f"{bin_dir}/llama-bench", "-m", model, "-p", "0", "-n", "0", "-pg", "32,128",
                        "-t", str(threads), "-r", str(n), "-o", "jsonl"])
        _, _, cpu1 = bench(1)
        out, rss, cpu = bench(1 + reps)
        r = [json.loads(line) for line in out.splitlines() if line.startswith("{")][-1]
        rec.update(seconds=statistics.median(r["samples_ns"]) / 1e9, cpu_seconds=(cpu - cpu1) / reps, tokens=128,
                   prompt=32, build=f"{r.get('build_commit', '?')} ({r.get('build_number', '?')})",
                   cpu=r.get("cpu_info", ""), flash_attn=r.get("flash_attn"))
    rec["peak_rss"] = rss
    print(json.dumps(rec))


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) != 5:
        sys.exit(__doc__)
    main(a[0], a[1], a[2], int(a[3]), int(a[4]))
