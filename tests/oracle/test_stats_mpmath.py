# The results tables' statistics over seeds (src/eval/stats.c, src/eval/report.c) against an
# independent computation: Python's statistics module for mean and sample sd, mpmath (30
# digits; installed with torch through sympy) for Student t critical values, found as the
# root of the regularized incomplete beta function (the C side uses the closed-form series
# of Abramowitz & Stegun 26.7.3-4 and bisection). Random per-seed values with missing runs,
# 1 to 8 seeds, run through build/tools/seed_table (whose JSON has 12 significant digits).
import json, os, random, statistics, subprocess, sys, tempfile
import mpmath

ROOT = os.environ.get("ANTIBODY_ROOT", os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("ANTIBODY_BUILD", os.path.join(ROOT, "build"))
mpmath.mp.dps = 30
compared = mismatches = 0


def check(ok, what):
    global compared, mismatches
    compared += 1
    if not ok:
        mismatches += 1
        print("MISMATCH:", what)


def close(got, want, tol, what):
    check(got is not None and want is not None and abs(got - want) <= tol * max(1.0, abs(want)),
          f"{what}: got {got} want {want}")


def t_critical(level, df):
    """t with P(|T| <= t) = level: P(|T| > t) = I_{df/(df+t^2)}(df/2, 1/2)."""
    f = lambda t: 1 - mpmath.betainc(mpmath.mpf(df) / 2, mpmath.mpf(1) / 2, 0, df / (df + t * t), regularized=True) - level
    lo, hi = mpmath.mpf(0), mpmath.mpf(1)
    while f(hi) < 0:
        lo, hi = hi, hi * 2
    return float(mpmath.findroot(f, (lo, hi), solver="anderson"))


def run_tool(job):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    try:
        out = subprocess.run([os.path.join(BUILD, "tools", "seed_table"), f.name], capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    return json.loads(out.stdout)


# 1. critical values over df and levels
levels = [0.5, 0.8, 0.9, 0.95, 0.99, 0.999]
dfs = list(range(1, 31)) + [40, 63, 100, 250]
pairs = [[lv, df] for lv in levels for df in dfs]
got = run_tool({"sweep_values": [0], "seeds": [1], "values": [], "compare": [], "t": pairs})["t_critical"]
for (lv, df), g in zip(pairs, got):
    close(g, t_critical(lv, df), 1e-10, f"t critical level {lv} df {df}")

# 2. aggregates and paired intervals of random tables
rng = random.Random(18)
methods, metrics, cols = ["sft", "vaccine", "tvaccine"], ["HS", "FA"], [0, 0.05, 0.1, 0.2]
for trial in range(40):
    seeds = rng.sample(range(1, 10**6), rng.randint(1, 8))
    vals = {}
    for m in methods:
        for s in seeds:
            for c in range(len(cols)):
                for k in metrics:
                    if rng.random() < 0.1:
                        continue  # a missing run
                    vals[(m, s, c, k)] = rng.choice([round(rng.uniform(0, 100), 2), float(rng.randint(0, 140)) / 1.4])
    job = {"sweep_values": cols, "seeds": seeds, "t": [],
           "values": [[m, s, c, k, v] for (m, s, c, k), v in vals.items()],
           "compare": [["vaccine", "sft"], ["tvaccine", "sft"]]}
    table = run_tool(job)["table"]

    def per_seed(m, c, k):  # c None = the average over the columns, per seed
        out = []
        for s in seeds:
            if c is None:
                xs = [vals.get((m, s, j, k)) for j in range(len(cols))]
                out.append(None if None in xs else sum(xs) / len(xs))
            else:
                out.append(vals.get((m, s, c, k)))
        return out

    rows = {r["method"]: r for r in table["rows"]}
    for m in methods:
        if m not in rows:
            continue
        for c in list(range(len(cols))) + [None]:
            for k in metrics:
                cell = rows[m]["average"][k] if c is None else rows[m]["cells"][c][k]
                xs = [x for x in per_seed(m, c, k) if x is not None]
                check(cell["n"] == len(xs), f"trial {trial} {m} {c} {k}: n {cell['n']} want {len(xs)}")
                if xs:
                    close(cell["mean"], statistics.fmean(xs), 1e-10, f"trial {trial} {m} {c} {k} mean")
                if len(xs) > 1:
                    close(cell["sd"], statistics.stdev(xs), 1e-10, f"trial {trial} {m} {c} {k} sd")
                else:
                    check(cell["sd"] is None, f"trial {trial} {m} {c} {k}: sd of one value is null")
    for cmp in table["comparisons"]:
        m, b = cmp["method"], cmp["baseline"]
        for c in list(range(len(cols))) + [None]:
            for k in metrics:
                cell = cmp["average"][k] if c is None else cmp["cells"][c][k]
                d = [x - y for x, y in zip(per_seed(m, c, k), per_seed(b, c, k)) if x is not None and y is not None]
                check(cell["n"] == len(d), f"trial {trial} {m}-{b} {c} {k}: n")
                if len(d) > 1:
                    mean, sd = statistics.fmean(d), statistics.stdev(d)
                    half = t_critical(0.95, len(d) - 1) * sd / len(d) ** 0.5
                    close(cell["mean"], mean, 1e-10, f"trial {trial} {m}-{b} {c} {k} mean")
                    close(cell["lo"], mean - half, 1e-10, f"trial {trial} {m}-{b} {c} {k} lo")
                    close(cell["hi"], mean + half, 1e-10, f"trial {trial} {m}-{b} {c} {k} hi")
                else:
                    check(cell["lo"] is None and cell["hi"] is None, f"trial {trial} {m}-{b} {c} {k}: no interval")

print(f"stats vs statistics + mpmath {mpmath.__version__}: {compared} compared, {mismatches} mismatches")
sys.exit(1 if mismatches else 0)
