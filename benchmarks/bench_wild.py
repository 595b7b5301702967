"""What the consistency step's check finds, and what it costs (docs/wild.md).

1. Detection (``--detect N``): N val and N kanji crops (256 px) in every family of
   :mod:`training.degrade` (seeded), restored by the default pipeline; per family, how often the
   grid search found a table, the step was applied or skipped, (re-saves on the same grid
   from a coarser quality) the first quality was named within 2 of the truth, and the mean PSNR
   of the restorations against the clean crop put through the same geometry.
2. Cost: on val crops saved once at QF 20 and re-saved (QF 30 then 75), the default pipeline as
   shipped, the same with the check taken out (``outside_share`` returning 0 and no same-grid
   re-save test: the step applied as before), and the check's parts alone. Best of ``--repeat``
   runs, one thread by default.

3. Calibration (``--calibrate N``): for N val and N // 2 kanji crops (320 px) under fixed
   degradations, the share :func:`core.jpeg_consistency.outside_share` measures on the
   networks' result (step off), per degradation: smallest and largest over the crops, and the
   PSNR with the step forced on (as before the check) and off.

4. Block grid strength (``--grid-strength N``): :func:`core.resample.block_grid_strength` on
   every 4th drawing of ``--train`` (not the evaluation sets), N px crops, two seeded samples of
   every family of :mod:`training.degrade`: its spread per family and the share that
   :func:`core.resample.looks_resized` would send to the wild backbone with and without a table.
   No network runs.
5. Routing (``--route N``): the same samples restored with the wild backbone wherever the pipeline
   may use it (no table, or a last JPEG that did not make the damage) and with the default
   backbone only; per family the mean PSNR of both and of the shipped thresholds' choice, and
   per threshold the mean gain of routing by it (table found / no table). ``--wild-model`` gives
   the file (default: the shipped one).
6. Cost of the wild pair (``--wild-cost N``): N val crops (``--crop``) saved once at QF 20, resized
   x0.75 after the save (kept as pixels) and resized then saved again at QF 85; the pipeline with
   ``wild_network`` on and off, best of ``--repeat``.

7. Grid phase (``--grid-phase N``): :func:`core.jpeg_consistency.find_jpeg_grid` alone on N val,
   N kanji and N ``--train`` drawings: 256 and 512 px layers cut from Pillow JPEGs at QF 10/20/30/40
   at an offset (dy, dx) of 0-7 (not both 0, seeded), counted when the right phase and quality
   are found; false finds on layers that are no JPEG at their size (the clean crop, and JPEGs
   resized x0.75 / x1.5 kept as pixels); time per call on 256 and 1024 px layers (CPU time, one
   thread).
   No network runs.

8. Disagreement (``--disagreement N``): on layers whose last JPEG did not make their damage but
   whose grid is strong (``--families``, every ``--every``-th drawing of ``--train``), how far the
   wild pair's restoration lies from the default pair's, and the PSNR of both and of the shipped
   pipeline, which keeps the wild pair's result where the gap is wide.

8b. Re-save fit (``--resave-fit N``): on the same kind of layers (the step skipped), how well a
   re-save at the layer's size explains its damage (:func:`core.jpeg_consistency.resave_fit`), per
   family, the PSNR of each pair and as shipped, and the gain of routing by each threshold.

8c. The rim of resized lines (``--rim N``): on the layers of ``--families`` (default: the two
   resize families and shifted re-saves) that the pipeline restores with a wild backbone, gray and
   coloured (the same crops in colour inks), the PSNR with eq. 2 keeping the mask's uncertain rim
   at each margin (0: no rim; :data:`core.pipeline.RIM_MARGIN`, ``RIM_MARGIN_COLOUR``).

8d. Re-saves at about the same quality (``--same-grid N``): on every ``--every``-th drawing of
   ``--train`` (N px crops), two JPEGs saved once (QF 10-90) and two saved twice on the same grid
   (the second quality 10 below to 15 above the first), seeded; where the consistency step's check
   let the step run, :func:`core.jpeg_consistency.same_grid_resave` on the restoration and the PSNR
   with the step and without it: the fit's spread per kind, and the mean gain of skipping the step
   below each threshold.

8e. Other encoders (``--encoders N``): JPEGs saved with mozjpeg's, flat and Photoshop-like tables
   (:data:`ENCODER_SAVES`) from N val and N kanji crops: how often their table is found, the PSNR
   without that search, as shipped and with the file's table given; false finds and the search's
   CPU time on layers that are no JPEG at their size, and the layers of every family of
   :mod:`training.degrade` given another encoder's table; then the same crops quantized with a
   dead zone (a stand-in for mozjpeg's trellis quantization) with mozjpeg's default table: the
   step with exact boxes and as shipped (``OTHER_SLACK`` wider). Then the same saves of the same
   crops coloured (:func:`training.colour.coloured_crop`), as RGB JPEGs with 4:2:0 and 4:4:4
   chroma: the table found in the luminance (:func:`core.colour.jpeg_luma`), RGB PSNR without
   the other tables' search (such a layer then holds no grid for the pipeline: the colour wild
   backbone, no consistency step), with the search but no consistency step (the colour backbone),
   and as shipped; false finds and the search's CPU time on coloured layers that are no JPEG at
   their size, and on coloured layers of every family.

9. Clean drawings (``--clean-pairs N``): never-JPEG'd windows of ``--train`` drawings restored by
   the default pair and as shipped (the wild pair, since they hold no JPEG noise to go by).

10. Colour layers with no JPEG grid (``--colour-route N``): every ``--every``-th drawing of
    ``--data`` and ``--kanji``, the N px window with the most line detail, coloured
    (:func:`training.colour.coloured_crop`); saved once as an RGB JPEG at QF 10/20/30/40 in its
    evaluation inks, all in yellow and all in light blue, and (one seeded sample each) in every
    other family of :mod:`training.degrade`; restored as shipped and with ``wild_network`` off
    (the colour backbone on every colour layer): per set and family how many layers took the
    colour wild backbone, the RGB PSNR of both, and how many fell below their input.
    ``--wild-colour-model`` gives the file (default: the shipped one).

    python -m benchmarks.bench_wild --detect 8 --crop 768 --images 3
    python -m benchmarks.bench_wild --detect 16 --families crop single --images 0
    python -m benchmarks.bench_wild --calibrate 5 --images 0
    python -m benchmarks.bench_wild --grid-strength 256 --images 0
    python -m benchmarks.bench_wild --route 256 --images 0
    python -m benchmarks.bench_wild --wild-cost 2 --crop 1024 --images 0
    python -m benchmarks.bench_wild --grid-phase 4 --images 0
    python -m benchmarks.bench_wild --disagreement 256 --images 0 --every 2 \
        --families double_aligned double_shifted resize_then_jpeg
    python -m benchmarks.bench_wild --resave-fit 256 --images 0 --every 2 \
        --families double_aligned double_shifted resize_then_jpeg
    python -m benchmarks.bench_wild --rim 256 --images 0 --every 4
    python -m benchmarks.bench_wild --same-grid 256 --images 0 --every 1
    python -m benchmarks.bench_wild --clean-pairs 256 --images 0 --every 1 --train .../lineart/val
    python -m benchmarks.bench_wild --colour-route 256 --images 0 --every 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _best(fn, repeat: int, clock=time.perf_counter) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def _calibration_inputs(c: np.ndarray) -> dict:
    from training.degrade import encode, resize

    out = {f"single {q}": (encode(c, q), c) for q in (10, 20, 40, 75, 85, 90)}
    for q1, q2 in ((20, 75), (30, 75), (30, 90), (40, 85), (10, 60), (50, 90), (40, 60), (90, 30)):
        out[f"re-saved {q1} then {q2}"] = (encode(encode(c, q1), q2), c)
    for q1, q2, (dy, dx) in ((30, 75, (3, 5)), (20, 90, (4, 4)), (40, 80, (1, 0))):
        out[f"re-saved {q1} then {q2} after a crop of {dy},{dx}"] = (encode(encode(c, q1)[dy:, dx:], q2), c[dy:, dx:])
    for q1, s, q2 in ((20, 0.75, 90), (30, 0.5, 85), (20, 1.5, 90), (20, 1.25, 80)):
        out[f"QF {q1} resized x{s}, saved at {q2}"] = (
            encode(resize(encode(c, q1), s, "lanczos"), q2),
            resize(c, s, "lanczos"),
        )
    out["QF 20 cropped 3,5"] = (encode(c, 20)[3:, 5:], c[3:, 5:])
    return out


def calibration(restorer, args) -> None:
    from benchmarks.compare_waifu2x import choose_crop, crop, pick_files
    from core import jpeg_consistency as jc
    from core.metrics import psnr
    from core.pipeline import RestoreOptions
    from training.data import load_drawing

    rows: dict = {}
    saved = jc.max_outside
    for folder, n in ((args.data, args.calibrate), (args.kanji, args.calibrate // 2)):
        for path in pick_files(Path(folder), n):
            full = load_drawing(path)
            c = crop(full, choose_crop(full, 320))
            for name, (img, ref) in _calibration_inputs(c).items():
                grid = jc.find_jpeg_grid(img)
                off = restorer.restore(img, RestoreOptions(jpeg_consistency=False))
                jc.max_outside = lambda _grid: float("inf")
                try:
                    forced = restorer.restore(img, RestoreOptions())
                finally:
                    jc.max_outside = saved
                share = None if grid is None else jc.outside_share(off.image, img, grid, off.mask == 0)
                rows.setdefault(name, []).append((share, psnr(ref, forced.image), psnr(ref, off.image)))
    print("| input | crops with a table | outside share, min - max | PSNR, step forced on | PSNR, step off |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        sh = [x[0] for x in r if x[0] is not None]
        span = f"{min(sh):.3f} - {max(sh):.3f}" if sh else "–"
        print(
            f"| {name} | {len(sh)} of {len(r)} | {span} | {np.mean([x[1] for x in r]):.2f} | "
            f"{np.mean([x[2] for x in r]):.2f} |",
            flush=True,
        )
    print(flush=True)


def detection(restorer, opts, args) -> None:
    from benchmarks.compare_waifu2x import choose_crop, crop, pick_files
    from core.metrics import psnr
    from training.data import load_drawing
    from training.degrade import FAMILIES, degrade

    counts: dict = {}
    for si, folder in enumerate((args.data, args.kanji)):
        for k, path in enumerate(pick_files(Path(folder), args.detect)):
            full = load_drawing(path)
            c = crop(full, choose_crop(full, 256))
            for fi, fam in enumerate(FAMILIES):
                if args.families and fam not in args.families:
                    continue
                d = degrade(c, np.random.default_rng([args.seed, si, k, fi]), fam, qf_range=(10, 40))
                res = restorer.restore(d.image, opts)
                n = counts.setdefault(
                    fam,
                    {
                        "n": 0,
                        "applied": 0,
                        "skipped": 0,
                        "none": 0,
                        "coarser_first": 0,
                        "coarser_skipped": 0,
                        "first_named": 0,
                        "first_right": 0,
                        "psnr": [],
                    },
                )
                n["n"] += 1
                n["psnr"].append(psnr(d.reference, res.image))
                skipped = [x for x in res.notes if "consistency step was skipped" in x]
                if res.jpeg_quality is not None:
                    n["applied"] += 1
                elif skipped:
                    n["skipped"] += 1
                else:
                    n["none"] += 1
                if fam == "double_aligned" and d.info["qf"] < d.info["qf2"]:
                    n["coarser_first"] += 1
                    n["coarser_skipped"] += bool(skipped)
                    named = [x for x in skipped if "first quality about" in x]
                    if named:
                        n["first_named"] += 1
                        q = int(named[0].split("first quality about ")[1].split(",")[0])
                        n["first_right"] += abs(q - d.info["qf"]) <= 2
    print(
        "| family | inputs | step applied | step skipped | no table found | re-saves from a lower quality: "
        "skipped / first quality named (right ±2) / all | PSNR (dB) |\n|---|---:|---:|---:|---:|---|---:|"
    )
    for fam, n in counts.items():
        first = (
            f"{n['coarser_skipped']} / {n['first_named']} ({n['first_right']}) / {n['coarser_first']}"
            if n["coarser_first"]
            else "–"
        )
        print(
            f"| {fam} | {n['n']} | {n['applied']} | {n['skipped']} | {n['none']} | {first} | {np.mean(n['psnr']):.2f} |"
        )
    print(flush=True)


def _spread(values: np.ndarray, digits: int = 2) -> str:
    """Table cells: the minimum, 10th percentile, median, 90th percentile and maximum (dashes for none)."""
    if not values.size:
        return " | ".join("–" * 5)
    return " | ".join(f"{x:.{digits}f}" for x in np.percentile(values, [0, 10, 50, 90, 100]))


def _train_samples(args, side: int, colour: bool = False):
    """(family, degraded sample) for two seeded samples of every family (``--families``, with
    ``--route``) on every ``--every``-th drawing of ``--train``, ``side`` px crops; with ``colour``
    the crop in colour inks (:func:`training.colour.coloured_crop`, other seeds)."""
    from benchmarks.compare_waifu2x import choose_crop, crop
    from training.colour import coloured_crop
    from training.data import load_drawing
    from training.degrade import FAMILIES, degrade

    files = sorted(Path(args.train).glob("*.png"))[:: args.every]
    for k, path in enumerate(files):
        full = load_drawing(path)
        c = crop(full, choose_crop(full, side))
        if colour:
            c = coloured_crop(c, k)
        for fi, fam in enumerate(FAMILIES):
            if (args.route or args.disagreement or args.resave_fit) and args.families and fam not in args.families:
                continue
            if args.rim and fam not in (args.families or ("resize_then_jpeg", "resize_png", "double_shifted")):
                continue
            for rep in range(2):
                rng = np.random.default_rng([args.seed + 7 + 6 * colour, k, fi, rep])
                yield fam, degrade(c, rng, fam, qf_range=(10, 40))


def grid_strength(args) -> None:
    from core import jpeg_consistency as jc
    from core import resample
    from training.degrade import FAMILIES

    files = sorted(Path(args.train).glob("*.png"))[:: args.every]
    found: dict[str, list[float]] = {f: [] for f in FAMILIES}
    leads: dict[str, list[float]] = {f: [] for f in FAMILIES}  # layers with no table found only
    routed: dict[str, list[bool]] = {f: [] for f in FAMILIES}
    for fam, d in _train_samples(args, args.grid_strength):
        s = resample.block_grid_strength(d.image)
        found[fam].append(np.nan if s is None else s)
        if jc.find_jpeg_grid(d.image) is None:
            lead = resample.block_grid_lead(d.image)
            leads[fam].append(np.nan if lead is None else lead)
            routed[fam].append(resample.looks_resized(d.image, table_found=False))
    print(
        f"\nblock_grid_strength, {len(files)} drawings of {args.train} ({args.grid_strength} px crops, 2 samples each); "
        f"taken for resized below {resample.RESIZED_WITHOUT_TABLE} (no table) / {resample.RESIZED_WITH_TABLE} "
        "(last JPEG did not make the damage)\n"
    )
    print("| family | samples | none | min | 10 % | median | 90 % | max | below, no table | below, with table |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for fam, v in found.items():
        v = np.array(v)
        ok = v[~np.isnan(v)]
        q = np.percentile(ok, [0, 10, 50, 90, 100])
        lo = (ok < resample.RESIZED_WITHOUT_TABLE).mean()
        lo_t = (ok < resample.RESIZED_WITH_TABLE).mean()
        print(
            f"| {fam} | {v.size} | {int(np.isnan(v).sum())} | "
            + " | ".join(f"{x:.2f}" for x in q)
            + f" | {100 * lo:.0f} % | {100 * lo_t:.0f} % |"
        )
    print(
        f"\nblock_grid_lead on the layers with no JPEG table found (taken for resized below {resample.RESIZED_LEAD}, "
        f"or with the strength below {resample.RESIZED_WITHOUT_TABLE}, or with no paper noise to measure)\n"
    )
    print("| family | no table | none | min | 10 % | median | 90 % | max | taken for resized |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for fam, v in leads.items():
        if not v:
            continue
        v = np.array(v)
        ok = v[~np.isnan(v)]
        q = _spread(ok)
        print(f"| {fam} | {v.size} | {int(np.isnan(v).sum())} | {q} | {sum(routed[fam])} of {v.size} |")
    print(flush=True)


def _wild_wherever_possible(restorer, img: np.ndarray) -> np.ndarray:
    """The pipeline's result with every layer taken for resized: the wild pair wherever it may run
    (no table, or a last JPEG that did not make the damage)."""
    from core import jpeg_consistency, resample
    from core.pipeline import RestoreOptions

    shipped, fit = resample.resize_evidence, jpeg_consistency.resave_fit
    resample.resize_evidence = lambda _gray, table_found: "forced"
    jpeg_consistency.resave_fit = lambda *_a, **_k: None  # (no fit: the layer is taken for resized)
    try:
        return restorer.restore(img, RestoreOptions(enlarged=False)).image
    finally:
        resample.resize_evidence, jpeg_consistency.resave_fit = shipped, fit


def routing(restorer, args) -> None:
    from core import jpeg_consistency as jc
    from core import resample
    from core.metrics import psnr
    from core.pipeline import RestoreOptions

    rows = []  # family, table found, strength, PSNR wild where possible, PSNR default only, shipped rule, lead
    inputs = []  # PSNR of the input
    for fam, d in _train_samples(args, args.route):
        strength = resample.block_grid_strength(d.image)
        table = jc.find_jpeg_grid(d.image) is not None
        resized = resample.looks_resized(d.image, table_found=table)
        wild = _wild_wherever_possible(restorer, d.image)
        default = restorer.restore(d.image, RestoreOptions(wild_network=False, enlarged=False)).image
        s = np.nan if strength is None else strength
        lead = resample.block_grid_lead(d.image)
        lead = np.nan if lead is None else lead
        rows.append((fam, table, s, psnr(d.reference, wild), psnr(d.reference, default), resized, lead))
        inputs.append(psnr(d.reference, d.image))
    print(f"\nrouting on {args.train} ({args.route} px crops): PSNR (dB), mean per family\n")
    print(
        "| family | samples | default backbone | wild where possible | strength alone | strength and lead "
        "| best of the two | below the input: strength alone / strength and lead |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    limits = {True: resample.RESIZED_WITH_TABLE, False: resample.RESIZED_WITHOUT_TABLE}
    for fam in dict.fromkeys(r[0] for r in rows):
        idx = [i for i, r in enumerate(rows) if r[0] == fam]
        rr = [rows[i] for i in idx]
        routed = [r[3] if r[5] else r[4] for r in rr]  # the shipped rule (core.resample.looks_resized)
        # the rule before the lead: the strength's thresholds alone, no paper noise -> default pair
        alone = [r[3] if r[2] < limits[r[1]] else r[4] for r in rr]
        below = [sum(p < inputs[i] for p, i in zip(ps, idx)) for ps in (alone, routed)]
        print(
            f"| {fam} | {len(rr)} | {np.mean([r[4] for r in rr]):.2f} | {np.mean([r[3] for r in rr]):.2f} | "
            f"{np.mean(alone):.2f} | {np.mean(routed):.2f} | {np.mean([max(r[3], r[4]) for r in rr]):.2f} | "
            f"{below[0]} / {below[1]} |"
        )
    print("\nmean gain over the default backbone (dB, over every sample) when routing below a threshold:\n")
    print("| threshold | with a table | without |\n|---:|---:|---:|")
    for t in (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.6, float("inf")):
        gains = [
            [(r[3] - r[4]) if r[2] < t or (t == float("inf")) else 0.0 for r in rows if r[1] == tab] for tab in (1, 0)
        ]
        print(f"| {t} | {np.mean(gains[0]):+.3f} | {np.mean(gains[1]):+.3f} |")
    print(
        "\nthe same when routing where the strength is below the shipped threshold "
        f"({resample.RESIZED_WITH_TABLE} with a table, {resample.RESIZED_WITHOUT_TABLE} without) or the lead "
        "(core.resample.block_grid_lead) below a threshold:\n"
    )
    print("| lead threshold | with a table | without |\n|---:|---:|---:|")
    for t in (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0):
        gains = [
            [(r[3] - r[4]) if r[2] < limits[tab] or r[6] < t else 0.0 for r in rows if r[1] == tab] for tab in (1, 0)
        ]
        print(f"| {t} | {np.mean(gains[0]):+.3f} | {np.mean(gains[1]):+.3f} |")
    print(flush=True)


def _skipped_layers(restorer, args, side: int):
    """(family, degraded sample, the default pair's result) for the samples of :func:`_train_samples`
    whose consistency step the default pair skipped (their last JPEG did not make their damage)."""
    from core.pipeline import RestoreOptions

    for fam, d in _train_samples(args, side):
        default = restorer.restore(d.image, RestoreOptions(wild_network=False, enlarged=False))
        if any("consistency step was skipped" in n for n in default.notes):
            yield fam, d, default


def _pair_scores(restorer, d, default) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The wild pair's result on the sample (wherever it may run), and the PSNR of the default pair,
    the wild pair, the pipeline as shipped and the input."""
    from core.metrics import psnr
    from core.pipeline import RestoreOptions

    shipped = restorer.restore(d.image, RestoreOptions(enlarged=False)).image
    wild = _wild_wherever_possible(restorer, d.image)
    ref = d.reference
    return wild, (psnr(ref, default.image), psnr(ref, wild), psnr(ref, shipped), psnr(ref, d.image))


def disagreement(restorer, args) -> None:
    """``--disagreement N``: on layers whose last JPEG did not make their damage but whose grid is
    strong (the strength keeps them on the default pair), the RMS gap between the default and the
    wild pairs' restorations, per family, and the PSNR of each and of the shipped pipeline, which
    keeps the wild pair's result above :data:`core.pipeline.WILD_DISAGREEMENT`."""
    from core import resample
    from core.pipeline import WILD_DISAGREEMENT

    rows: dict[str, list[tuple[float, float, float, float, float]]] = {}
    for fam, d, default in _skipped_layers(restorer, args, args.disagreement):
        if resample.looks_resized(d.image, table_found=True):  # (a skipped step means a table was found)
            continue
        wild, scores = _pair_scores(restorer, d, default)
        gap = float(np.sqrt(np.mean((wild.astype(np.float64) - default.image) ** 2)))
        rows.setdefault(fam, []).append((gap, *scores))
    print(
        f"\nwild - default gap on layers skipped but with a strong grid, {args.train} ({args.disagreement} px crops); "
        f"the wild pair's result is kept above {WILD_DISAGREEMENT}\n"
    )
    print(
        "| family | layers | gap: min | median | max | above | default pair | wild pair | shipped "
        "| below the input: default / shipped |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for fam, rr in rows.items():
        g = np.array([r[0] for r in rr])
        below = (sum(r[1] < r[4] for r in rr), sum(r[3] < r[4] for r in rr))
        print(
            f"| {fam} | {len(rr)} | {g.min():.2f} | {np.median(g):.2f} | {g.max():.2f} | {int((g > WILD_DISAGREEMENT).sum())} "
            f"| {np.mean([r[1] for r in rr]):.2f} | {np.mean([r[2] for r in rr]):.2f} | {np.mean([r[3] for r in rr]):.2f} "
            f"| {below[0]} / {below[1]} |"
        )
    print(flush=True)


def resave_fits(restorer, args) -> None:
    """``--resave-fit N``: on layers whose last JPEG did not make their damage (the step skipped),
    the re-save fit (:func:`core.jpeg_consistency.resave_fit`, on the default pair's restoration),
    per family; the PSNR of the default pair, of the wild pair, of the pipeline as shipped and of
    the better of the two per layer (with the answer in hand); and the mean gain over the default
    pair of routing by each threshold."""
    from core import jpeg_consistency as jc

    rows: dict[str, list[tuple[float, float, float, float, float]]] = {}
    for fam, d, default in _skipped_layers(restorer, args, args.resave_fit):
        fit = jc.resave_fit(d.image, default.image, jc.find_jpeg_grid(d.image))
        rows.setdefault(fam, []).append((np.nan if fit is None else fit.ratio, *_pair_scores(restorer, d, default)[1]))
    print(
        f"\nre-save fit on layers whose step was skipped, {args.train} ({args.resave_fit} px crops); taken for "
        f"resized (the wild pair) at or above {jc.RESAVE_FIT}\n"
    )
    print(
        "| family | layers | no fit | fit: min | 10 % | median | 90 % | max | taken for resized | default pair "
        "| wild pair | shipped | better of the two | below the input: default / shipped |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for fam, rr in rows.items():
        f = np.array([r[0] for r in rr])
        ok = f[~np.isnan(f)]
        q = _spread(ok)
        below = (sum(r[1] < r[4] for r in rr), sum(r[3] < r[4] for r in rr))
        print(
            f"| {fam} | {len(rr)} | {int(np.isnan(f).sum())} | {q} | {int((ok >= jc.RESAVE_FIT).sum())} "
            f"| {np.mean([r[1] for r in rr]):.2f} | {np.mean([r[2] for r in rr]):.2f} | {np.mean([r[3] for r in rr]):.2f} "
            f"| {np.mean([max(r[1], r[2]) for r in rr]):.2f} | {below[0]} / {below[1]} |"
        )
    every = [r for rr in rows.values() for r in rr if not np.isnan(r[0])]
    if every:
        thresholds = (0.6, 0.66, 0.7, 0.72, 0.74, 0.75, 0.78, 0.8, 0.9, 1.0)
        gains = [np.mean([(r[2] - r[1]) if r[0] >= t else 0.0 for r in every]) for t in thresholds]
        print("\n| fit threshold | " + " | ".join(str(t) for t in thresholds) + " |")
        print("|---|" + "---:|" * len(thresholds))
        print("| gain over the default pair (dB, mean) | " + " | ".join(f"{g:+.3f}" for g in gains) + " |")
    print(flush=True)


def rim_margins(restorer, args) -> None:
    """``--rim N``: the layers a wild backbone restores, gray and coloured (the same crops,
    :func:`training.colour.coloured_crop`), with eq. 2 keeping the mask's rim at each margin."""
    from core import pipeline
    from core.metrics import psnr
    from core.pipeline import RestoreOptions

    kinds = {
        "gray": ("RIM_MARGIN", (0.0, 1.0, 1.5, 2.0, 3.0), "network trained on resized"),
        "colour": ("RIM_MARGIN_COLOUR", (0.0, 2.0, 4.0, 6.0, 9.0), "colour network trained on JPEGs at their size"),
    }
    shipped = {k: getattr(pipeline, name) for k, (name, _, _) in kinds.items()}
    rows: dict[tuple[str, str], list[list[float]]] = {}
    try:
        for kind, (name, margins, routed) in kinds.items():
            for fam, sample in _train_samples(args, args.rim, colour=kind == "colour"):
                scores = [psnr(sample.reference, sample.image)]
                for m in margins:
                    setattr(pipeline, name, m)
                    res = restorer.restore(sample.image, RestoreOptions(enlarged=False))
                    if not any(routed in note for note in res.notes):
                        break
                    scores.append(psnr(sample.reference, res.image))
                else:
                    rows.setdefault((kind, fam), []).append(scores)
    finally:
        for k, (name, _, _) in kinds.items():
            setattr(pipeline, name, shipped[k])
    print(
        f"\nlayers a wild backbone restores, {args.train} ({args.rim} px crops), eq. 2 keeping the mask's rim at "
        f"each margin (0: none; shipped {shipped['gray']} gray, {shipped['colour']} colour); PSNR dB, and the "
        "worst change of a layer against no rim\n"
    )
    for kind, (_, margins, _) in kinds.items():
        print(
            "| layers | family | count | input | " + " | ".join(f"margin {m:g}" for m in margins) + " | worst change |"
        )
        print("|---|---|---:|---:|" + "---:|" * (len(margins) + 1))
        for (k, fam), rr in rows.items():
            if k != kind:
                continue
            a = np.array(rr)
            worst = " / ".join(f"{x:+.2f}" for x in (a[:, 2:] - a[:, 1:2]).min(axis=0))
            means = " | ".join(f"{x:.2f}" for x in a[:, 1:].mean(axis=0))
            print(f"| {kind} | {fam} | {len(a)} | {a[:, 0].mean():.2f} | {means} | {worst} |")
        print()
    print(flush=True)


def same_grid(restorer, args) -> None:
    """``--same-grid N``: the same-grid re-save fit on JPEGs saved once and twice at about one quality."""
    from benchmarks.compare_waifu2x import choose_crop, crop
    from core import jpeg_consistency as jc
    from core.metrics import psnr
    from core.pipeline import RestoreOptions
    from training.data import load_drawing
    from training.degrade import encode

    rows: dict[str, list[tuple[float, float, float, int]]] = {"saved once": [], "saved twice": []}
    for k, path in enumerate(sorted(Path(args.train).glob("*.png"))[:: args.every]):
        full = load_drawing(path)
        c = crop(full, choose_crop(full, args.same_grid))
        rng = np.random.default_rng([args.seed + 17, k])
        for kind in ("saved once", "saved once", "saved twice", "saved twice"):
            q1 = int(rng.integers(10, 91))
            img = (
                encode(c, q1)
                if kind == "saved once"
                else encode(encode(c, q1), int(np.clip(q1 + rng.integers(-10, 16), 10, 95)))
            )
            shipped, jc.same_grid_resave = jc.same_grid_resave, lambda *_a, **_k: None
            try:  # the step as the check alone lets it run
                with_step = restorer.restore(img, RestoreOptions(enlarged=False, wild_network=False))
            finally:
                jc.same_grid_resave = shipped
            if with_step.jpeg_quality is None:
                continue  # (no step to skip: no table, or the check skips it already)
            off = restorer.restore(img, RestoreOptions(enlarged=False, jpeg_consistency=False, wild_network=False))
            fit = jc.same_grid_resave(img, off.image, jc.find_jpeg_grid(img))
            if fit is None:
                continue
            rows[kind].append((fit.ratio, psnr(c, with_step.image), psnr(c, off.image), q1))
    print(f"\nsame-grid re-save fit, {args.train} ({args.same_grid} px crops), layers the check lets the step run on\n")
    print("| layers | count | fit: min | 10 % | median | 90 % | max | with the step | without | step gain: min / max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, rr in rows.items():
        if not rr:
            continue
        a = np.array(rr)
        q = _spread(a[:, 0], 3)
        gain = a[:, 1] - a[:, 2]
        print(
            f"| {kind} | {len(a)} | {q} | {a[:, 1].mean():.2f} | {a[:, 2].mean():.2f} | {gain.min():+.2f} / {gain.max():+.2f} |"
        )
    every = np.array([r for rr in rows.values() for r in rr])
    if every.size:
        thresholds = (0.9, 0.95, 0.97, 0.98, 0.99, 1.0)
        gains = [np.mean(np.where(every[:, 0] < t, every[:, 2] - every[:, 1], 0.0)) for t in thresholds]
        print("\n| fit threshold | " + " | ".join(str(t) for t in thresholds) + " |")
        print("|---|" + "---:|" * len(thresholds))
        print(
            "| gain of skipping the step below it (dB, mean over all) | "
            + " | ".join(f"{g:+.3f}" for g in gains)
            + " |"
        )
        once = [r for r in rows["saved once"] if r[0] < jc.SAME_GRID_FIT]
        print(
            f"\nsaved once, taken for re-saves (below {jc.SAME_GRID_FIT}): "
            + (", ".join(f"QF {r[3]} at {r[0]:.3f} (the step gave {r[1] - r[2]:+.2f} dB)" for r in once) or "none")
        )
    print(flush=True)


#: ``--encoders``: the other encoders' tables the JPEGs are saved with (``OTHER_BASE_TABLES`` name
#: or Pillow preset, quality; 0 for a preset).
ENCODER_SAVES = (
    ("mozjpeg's default table", 10),
    ("mozjpeg's default table", 30),
    ("mozjpeg's default table", 50),
    ("mozjpeg's default table", 75),
    ("mozjpeg's MS-SSIM table", 30),
    ("Klein, Silverstein and Carney's table", 40),
    ("a flat table", 30),
    ("web_low", 0),
    ("web_medium", 0),
)


def _encoder_table(name: str, quality: int) -> np.ndarray:
    """The luminance table of :data:`ENCODER_SAVES`' ``(name, quality)``: a Pillow preset's for
    quality 0, else ``OTHER_BASE_TABLES[name]`` scaled to ``quality``."""
    from PIL import JpegPresets

    from core import jpeg_consistency as jc

    if quality == 0:
        return np.asarray(JpegPresets.presets[name]["quantization"][0])
    return jc.scaled_table(jc.OTHER_BASE_TABLES[name], quality)


def _restored_without_other_tables(restorer, img: np.ndarray) -> np.ndarray:
    """The default restoration of ``img`` with the search for other encoders' tables turned off
    (the pipeline as it was before that search)."""
    from core import jpeg_consistency as jc
    from core.pipeline import RestoreOptions

    shipped, jc._other_tables_where_grid = jc._other_tables_where_grid, lambda *a, **k: None
    try:
        return restorer.restore(img, RestoreOptions()).image
    finally:
        jc._other_tables_where_grid = shipped


def _other_finds_where_no_jpeg(c: np.ndarray, search) -> list[tuple[bool, float]]:
    """On ``c`` (a clean gray or RGB crop) and its JPEGs resized x0.75 / x1.5 kept as pixels:
    whether ``search(img, other_tables)`` gives another encoder's table, and the CPU seconds the
    other tables' search adds."""
    from training.degrade import encode, resize

    out = []
    for img in (c, resize(encode(c, 30), 0.75, "area"), resize(encode(c, 30), 1.5, "lanczos")):
        t0 = time.process_time()
        search(img, False)
        t_ijg = time.process_time() - t0
        t0 = time.process_time()
        grid = search(img, True)
        out.append((grid is not None and grid.encoder is not None, time.process_time() - t0 - t_ijg))
    return out


def encoders(restorer, args) -> None:
    """``--encoders N``: JPEGs saved with other encoders' tables (:data:`ENCODER_SAVES`, through
    Pillow's ``qtables``) from N val and N kanji crops (256 px): how often the grid search finds the
    table, and the PSNR without that search, as shipped and with the file's table given (what
    ``python -m core restore`` does with a file); false finds on layers that are no JPEG at their
    size; CPU time of the search."""
    from benchmarks.compare_waifu2x import choose_crop, crop, pick_files
    from core import jpeg_consistency as jc
    from core.metrics import psnr
    from core.pipeline import RestoreOptions
    from core.resample import block_grid_strength
    from training.data import load_drawing
    from training.degrade import FAMILIES, dead_zone_jpeg, degrade, encode, encode_with_table, resize

    search = jc.find_jpeg_grid
    rows: dict[str, list[tuple]] = {}
    others: list[tuple[bool, float]] = []
    wild_layers: list[tuple[str, dict, bool]] = []
    strengths: tuple[list, list] = ([], [])  # block_grid_strength: those JPEGs, layers that are no JPEG
    for folder in (Path(args.data), Path(args.kanji)):
        for path in pick_files(folder, args.encoders):
            full = load_drawing(path)
            c = crop(full, choose_crop(full, 256))
            for name, q in ENCODER_SAVES:
                table = _encoder_table(name, q)
                img = encode_with_table(c, table)
                grid = search(img)
                found = grid is not None and grid.encoder is not None and np.array_equal(grid.table.reshape(-1), table)
                before = _restored_without_other_tables(restorer, img)
                shipped = restorer.restore(img, RestoreOptions()).image
                given = restorer.restore(img, RestoreOptions(jpeg_table=tuple(int(v) for v in table))).image
                t = _best(lambda i=img: search(i), 3, time.process_time)
                strengths[0].append(block_grid_strength(img))
                label = name if q == 0 else f"{name}, quality {q}"
                rows.setdefault(label, []).append(
                    (found, psnr(c, img), psnr(c, before), psnr(c, shipped), psnr(c, given), t)
                )
            for img in (c, resize(encode(c, 30), 0.75, "area"), resize(encode(c, 30), 1.5, "lanczos")):
                strengths[1].append(block_grid_strength(img))
            others += _other_finds_where_no_jpeg(c, lambda img, other: search(img, other_tables=other))
            for fi, family in enumerate(FAMILIES):  # IJG saves (up to QF 95), resized, re-saved, cut
                for rep in range(2):
                    d = degrade(c, np.random.default_rng([args.seed + 29, len(wild_layers), fi, rep]), family)
                    grid = search(d.image)
                    wild_layers.append((family, d.info, grid is not None and grid.encoder is not None))
    print(f"\nJPEGs saved with other encoders' tables ({args.encoders} val and {args.encoders} kanji crops, 256 px)\n")
    print("| saved with | table found | JPEG | without the search | shipped | file's table given | search (ms CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, rr in rows.items():
        a = np.array(rr, dtype=float)
        m = a.mean(axis=0)
        print(
            f"| {label} | {int(a[:, 0].sum())}/{len(a)} | {m[1]:.2f} | {m[2]:.2f} | **{m[3]:.2f}** | {m[4]:.2f} "
            f"| {1000 * m[5]:.0f} |"
        )
    a = np.array([r for rr in rows.values() for r in rr], dtype=float)
    print(f"| all | {int(a[:, 0].sum())}/{len(a)} | {a[:, 1].mean():.2f} | {a[:, 2].mean():.2f} | **{a[:, 3].mean():.2f}** "
          f"| {a[:, 4].mean():.2f} | {1000 * a[:, 5].mean():.0f} |")  # fmt: skip
    o = np.array(others, dtype=float)
    print(
        f"\nlayers that are no JPEG at their size (clean, JPEGs resized x0.75 / x1.5 kept as pixels): "
        f"{int(o[:, 0].sum())} of {len(o)} given another encoder's table; the extra search cost "
        f"{1000 * o[:, 1].mean():.0f} ms CPU on average (max {1000 * o[:, 1].max():.0f})",
        flush=True,
    )
    for label, values in zip(("those JPEGs", "layers that are no JPEG at their size"), strengths):
        v = np.array([x for x in values if x is not None])
        print(
            f"block_grid_strength of {label}: {len(values) - len(v)} of {len(values)} too little paper noise to "
            f"score; of the others min {v.min():.2f}, median {np.median(v):.2f}, max {v.max():.2f}; "
            f"{int((v < jc.OTHER_MIN_STRENGTH).sum())} below {jc.OTHER_MIN_STRENGTH} (the search is skipped there)"
            if v.size
            else f"block_grid_strength of {label}: none scored"
        )
    taken = [(f, i) for f, i, other in wild_layers if other]
    print(
        f"layers of every family of training.degrade (IJG saves), two seeded samples per crop: {len(taken)} of "
        f"{len(wild_layers)} given another encoder's table" + "".join(f"\n  {f} {i}" for f, i in taken),
        flush=True,
    )
    # An encoder that does not round (mozjpeg's trellis quantization picks smaller coefficients where
    # that saves bits), simulated by rounding with a dead zone: a coefficient rounds down unless it
    # lies that share of a step past the half step.
    table = jc.scaled_table(jc.OTHER_BASE_TABLES["mozjpeg's default table"], 30)
    zones = (0.0, 0.2, 0.3, 0.5)
    dead: dict[float, list[tuple]] = {z: [] for z in zones}
    for folder in (Path(args.data), Path(args.kanji)):
        for path in pick_files(folder, args.encoders):
            full = load_drawing(path)
            c = crop(full, choose_crop(full, 256))
            for z in zones:
                img = dead_zone_jpeg(c, table, z)
                shipped_slack, jc.OTHER_SLACK = jc.OTHER_SLACK, 0.0
                try:
                    rounding = restorer.restore(img, RestoreOptions()).image
                finally:
                    jc.OTHER_SLACK = shipped_slack
                dead[z].append(
                    (
                        psnr(c, img),
                        psnr(c, restorer.restore(img, RestoreOptions(jpeg_consistency=False)).image),
                        psnr(c, rounding),
                        psnr(c, restorer.restore(img, RestoreOptions()).image),
                    )
                )
    print(
        "\nmozjpeg's default table at quality 30, quantized with a dead zone (PSNR dB, the same crops)\n\n"
        "| dead zone (steps) | JPEG | without the step | the step, boxes for rounding | shipped "
        f"(boxes {jc.OTHER_SLACK} step wider away from zero) |\n|---:|---:|---:|---:|---:|"
    )
    for z, rr in dead.items():
        m = np.array(rr).mean(axis=0)
        print(f"| {z} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | **{m[3]:.2f}** |")
    print(flush=True)


def encoders_colour(restorer, args) -> None:
    """The colour part of ``--encoders N`` (see the module doc, 8e): :data:`ENCODER_SAVES` of N
    coloured val and N coloured kanji crops (256 px) as RGB JPEGs, each table as both the
    luminance and the chroma table."""
    from benchmarks.compare_waifu2x import choose_crop, crop, pick_files
    from core import colour
    from core import jpeg_consistency as jc
    from core.metrics import psnr
    from core.pipeline import RestoreOptions
    from training.colour import coloured_crop
    from training.data import load_drawing
    from training.degrade import FAMILIES, degrade, encode_with_table

    def search(img: np.ndarray, other: bool = True):
        stored = colour.jpeg_luma(img)
        return None if stored is None else jc.find_jpeg_grid(stored[0], bounds=stored[1], other_tables=other)

    rows: dict[str, list[tuple]] = {}
    others: list[tuple[bool, float]] = []
    family_finds: list[tuple[str, dict]] = []
    n_family = 0
    for folder in (Path(args.data), Path(args.kanji)):
        for k, path in enumerate(pick_files(folder, args.encoders)):
            full = load_drawing(path)
            c = coloured_crop(crop(full, choose_crop(full, 256)), k)
            for name, q in ENCODER_SAVES:
                table = _encoder_table(name, q).reshape(-1)
                for sub, sub_name in ((2, "4:2:0"), (0, "4:4:4")):
                    img = encode_with_table(c, table, sub)
                    grid = search(img)
                    found = (
                        grid is not None and grid.encoder is not None and np.array_equal(grid.table.reshape(-1), table)
                    )
                    label = (name if q == 0 else f"{name}, quality {q}") + f", {sub_name}"
                    rows.setdefault(label, []).append(
                        (
                            found,
                            psnr(c, img),
                            psnr(c, _restored_without_other_tables(restorer, img)),
                            psnr(c, restorer.restore(img, RestoreOptions(jpeg_consistency=False)).image),
                            psnr(c, restorer.restore(img, RestoreOptions()).image),
                        )
                    )
            others += _other_finds_where_no_jpeg(c, search)
            for fi, family in enumerate(FAMILIES):  # IJG saves, resized, re-saved, cut
                for rep in range(2):
                    d = degrade(c, np.random.default_rng([args.seed + 31, k, fi, rep]), family)
                    grid = search(d.image)
                    n_family += 1
                    if grid is not None and grid.encoder is not None:
                        family_finds.append((family, d.info))
    print(
        f"\nThe same saves coloured ({args.encoders} val and {args.encoders} kanji crops, 256 px, RGB JPEGs, each "
        "table for luminance and chroma; RGB PSNR dB)\n"
    )
    print("| saved with | table found | JPEG | without the search | the search, no consistency step | shipped |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, rr in rows.items():
        a = np.array(rr, dtype=float)
        m = a.mean(axis=0)
        print(f"| {label} | {int(a[:, 0].sum())}/{len(a)} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.2f} | **{m[4]:.2f}** |")
    a = np.array([r for rr in rows.values() for r in rr], dtype=float)
    gain = a[:, 4] - a[:, 2]
    print(
        f"| all | {int(a[:, 0].sum())}/{len(a)} | {a[:, 1].mean():.2f} | {a[:, 2].mean():.2f} | {a[:, 3].mean():.2f} "
        f"| **{a[:, 4].mean():.2f}** |\n\nshipped minus without the search, per layer: min {gain.min():+.2f}, "
        f"max {gain.max():+.2f} dB"
    )
    o = np.array(others, dtype=float)
    print(
        f"coloured layers that are no JPEG at their size (clean, JPEGs resized x0.75 / x1.5 kept as pixels): "
        f"{int(o[:, 0].sum())} of {len(o)} given another encoder's table; the extra search cost "
        f"{1000 * o[:, 1].mean():.0f} ms CPU on average (max {1000 * o[:, 1].max():.0f}) per search (the pipeline "
        "searches twice on such a layer: before the networks, for the backbone, and after them)"
    )
    print(
        f"coloured layers of every family of training.degrade (IJG saves), two seeded samples per crop: "
        f"{len(family_finds)} of {n_family} given another encoder's table"
        + "".join(f"\n  {f} {i}" for f, i in family_finds),
        flush=True,
    )


def clean_pairs(restorer, args) -> None:
    """``--clean-pairs N``: clean drawings (N px windows of every ``--every``-th drawing of
    ``--train``, never JPEG'd), restored by the default pair and by the wild pair, which the
    pipeline gives a layer with no paper noise to go by."""
    from benchmarks.compare_waifu2x import choose_crop, crop
    from core.metrics import psnr
    from core.pipeline import RestoreOptions
    from training.data import load_drawing

    rows, wild_count = [], []
    for path in sorted(Path(args.train).glob("*.png"))[:: args.every]:
        full = load_drawing(path)
        c = crop(full, choose_crop(full, args.clean_pairs))
        default = restorer.restore(c, RestoreOptions(wild_network=False, enlarged=False)).image
        wild = restorer.restore(c, RestoreOptions(enlarged=False))
        wild_count.append(any("network trained on resized" in n for n in wild.notes))
        rows.append((psnr(c, default), psnr(c, wild.image)))
    d, w = np.array(rows).T
    print(
        f"\nclean drawings of {args.train} ({args.clean_pairs} px, {len(rows)}): default pair {d.mean():.2f} dB "
        f"(min {d.min():.2f}), as shipped {w.mean():.2f} dB (min {w.min():.2f}; the wild pair on {sum(wild_count)})\n",
        flush=True,
    )


def colour_routing(restorer, args) -> None:
    """``--colour-route N``: coloured layers as shipped (the colour wild backbone where the
    luminance holds no JPEG grid) against ``wild_network`` off (the colour backbone on all)."""
    from benchmarks.compare_waifu2x import choose_crop, crop
    from core.metrics import psnr
    from core.pipeline import RestoreOptions
    from training.colour import INKS, coloured_crop, in_ink
    from training.data import load_drawing
    from training.degrade import FAMILIES, degrade, encode

    side, on, off = args.colour_route, RestoreOptions(), RestoreOptions(wild_network=False)
    rows: dict[tuple[str, str], list[tuple[bool, float, float, float]]] = {}
    for si, folder in enumerate((args.data, args.kanji)):
        name = Path(folder).name
        for k, path in enumerate(sorted(Path(folder).glob("*.png"))[:: args.every]):
            full = load_drawing(path)
            gray = crop(full, choose_crop(full, side))
            coloured = coloured_crop(gray, k * args.every)
            inputs = [
                (f"single, {ink}", c, encode(c, qf, 2))
                for ink, c in (
                    ("set's inks", coloured),
                    ("yellow", in_ink(gray, INKS["yellow"])),
                    ("light blue", in_ink(gray, INKS["light blue"])),
                )
                for qf in (10, 20, 30, 40)
            ]
            for fi, fam in enumerate(FAMILIES[1:], start=1):
                d = degrade(coloured, np.random.default_rng([args.seed + 11, si, k, fi]), fam, qf_range=(10, 40))
                inputs.append((fam, d.reference, d.image))
            for label, ref, img in inputs:
                res = restorer.restore(img, on)
                routed = any("colour network trained on JPEGs at their size and resized" in n for n in res.notes)
                before = restorer.restore(img, off).image
                rows.setdefault((name, label), []).append(
                    (routed, psnr(ref, img), psnr(ref, before), psnr(ref, res.image))
                )
    print(
        f"\ncolour layers ({side} px windows, every {args.every}. drawing): RGB PSNR (dB) with the colour backbone "
        "on every layer and as shipped\n"
    )
    print(
        "| set | layers | input | took the colour wild backbone | colour backbone | as shipped | change: mean / min "
        "| below the input: before / shipped |\n|---|---|---:|---:|---:|---:|---:|---:|"
    )
    for (name, label), v in rows.items():
        routed, inp, before, after = (np.array(x) for x in zip(*v))
        fin = np.isfinite(before) & np.isfinite(after)  # a blank window restored exactly: no change to count
        change = after[fin] - before[fin]
        print(
            f"| {name} | {label} | {np.mean(inp[np.isfinite(inp)]):.2f} | {int(routed.sum())} of {len(v)} | "
            f"{before[fin].mean():.2f} | {after[fin].mean():.2f} | {change.mean():+.2f} / {change.min():+.2f} | "
            f"{int((before < inp).sum())} / {int((after < inp).sum())} |"
        )
    print(flush=True)


def wild_cost(restorer, args) -> None:
    from benchmarks.compare_waifu2x import choose_crop, crop, pick_files
    from core.pipeline import RestoreOptions
    from training.data import load_drawing
    from training.degrade import encode, resize

    on, off = RestoreOptions(enlarged=False), RestoreOptions(wild_network=False, enlarged=False)
    print(
        "| drawing | input | wild pair on (s) | off (s) | change | pick | window (s) |\n|---|---|---:|---:|---:|---|---:|"
    )
    for path in pick_files(Path(args.data), args.wild_cost):
        full = load_drawing(path)
        c = crop(full, choose_crop(full, args.crop))
        inputs = (
            ("QF 20", encode(c, 20)),
            ("QF 20, x0.75", resize(encode(c, 20), 0.75, "lanczos")),
            ("QF 20, x0.75, QF 85", encode(resize(encode(c, 20), 0.75, "lanczos"), 85)),
        )
        for label, img in inputs:
            res = restorer.restore(img, on)  # warm-up, and which pair it took
            wild = any("trained on resized and re-saved JPEGs" in n for n in res.notes)
            pick = "wild" if wild else "default"
            if any("again with the network" in n for n in res.notes):
                pick += ", after the default pair"
            elif any("decided on a" in n for n in res.notes):
                pick += ", from the window"
            window = f"{res.timings['probe']:.3f}" if "probe" in res.timings else "–"
            a = _best(lambda img=img: restorer.restore(img, on), args.repeat)
            b = _best(lambda img=img: restorer.restore(img, off), args.repeat)
            print(f"| {path.stem} | {label} | {a:.3f} | {b:.3f} | {100 * (a / b - 1):+.1f} % | {pick} | {window} |")
    print(f"\n{args.crop} px crops, {args.threads} thread(s), best of {args.repeat}", flush=True)


def _phase_layers(args, side: int):
    """``(set, drawing index, clean crop of side + 8 px)`` for ``--grid-phase`` drawings of val,
    kanji and ``--train`` (spread over each set, :func:`pick_files`)."""
    from benchmarks.compare_waifu2x import choose_crop, crop, pick_files
    from training.data import load_drawing

    for name, folder in (("val", args.data), ("kanji", args.kanji), ("train", args.train)):
        for k, path in enumerate(pick_files(Path(folder), args.grid_phase)):
            full = load_drawing(path)
            yield name, k, crop(full, choose_crop(full, side + 8))


def _phase_stats(layer: np.ndarray, truth: tuple[int, int] | None) -> dict:
    """What the shifted-grid search of :func:`core.jpeg_consistency.find_jpeg_grid` sees on
    ``layer``: the right phase's rank by the step profile and by the coarse stage, its coarse share
    and its lead over the grids 4 px away; for a layer with no right phase, the largest coarse
    share and lead on the likeliest phases."""
    import torch

    from core import jpeg_consistency as jc

    tables, stack = jc._ijg_tables()
    rng = np.random.default_rng(0)
    order = jc._phase_candidates(layer, 63)
    out: dict = {"profile rank": order.index(truth) if truth in order else None}
    coarse = {}
    for phase in order[: jc.PHASES_TRIED] + ([truth] if truth and truth not in order[: jc.PHASES_TRIED] else []):
        blocks = jc._sample_textured(layer, *phase, 512, rng)
        if blocks.shape[0] < jc.MIN_BLOCKS:
            continue
        spread = torch.linspace(0, blocks.shape[0] - 1, min(blocks.shape[0], jc.SHIFTED_COARSE_BLOCKS)).round().long()
        ranked = jc._coarse(blocks[spread], stack, list(tables))
        fit = jc._fit(blocks, None, ranked, jc.FINE_TABLES)
        lead = None if fit is None else fit[0] - jc._share_away(layer, *phase, fit[2], 128, rng)
        coarse[phase] = (ranked[0][0], lead)
    tried = [p for p in order[: jc.PHASES_TRIED] if p in coarse]
    by_coarse = sorted(tried, key=lambda p: -coarse[p][0])
    if truth is not None:
        out["coarse rank"] = by_coarse.index(truth) if truth in by_coarse else None
        out["coarse"], out["lead"] = coarse.get(truth, (None, None))
    else:
        out["coarse"] = max((coarse[p][0] for p in tried), default=None)
        out["lead"] = max((coarse[p][1] for p in tried if coarse[p][1] is not None), default=None)
    return out


def _print_phase_stats(cut: list[dict], other: list[dict]) -> None:
    def share(rows, key, below):
        v = [r[key] for r in rows if r.get(key) is not None]
        return f"{sum(x < below for x in v)} of {len(rows)}"

    def spread(rows, key):
        v = np.array([r[key] for r in rows if r.get(key) is not None])
        return (
            "–" if v.size == 0 else f"{v.min():.2f} / {np.median(v):.2f} / {np.percentile(v, 99):.2f} / {v.max():.2f}"
        )

    print("\nthe shifted-grid search on the cut JPEGs (right phase) and on the layers that are no JPEG\n")
    print(
        f"- right phase first / within 3 / within 8 by the step profile: {share(cut, 'profile rank', 1)} / "
        f"{share(cut, 'profile rank', 3)} / {share(cut, 'profile rank', 8)}; first after the coarse ranking: "
        f"{share(cut, 'coarse rank', 1)}"
    )
    print(f"- coarse share of the right phase, min / median / 99 % / max: {spread(cut, 'coarse')}")
    print(f"- its lead over the grids 4 px away: {spread(cut, 'lead')}")
    print(f"- no JPEG: largest coarse share over the likeliest phases: {spread(other, 'coarse')}")
    print(f"- no JPEG: largest lead of a table that fits: {spread(other, 'lead')}")


def grid_phase(args) -> None:
    from core import jpeg_consistency as jc
    from training.degrade import KERNELS, encode, resize

    stats = hasattr(jc, "_coarse")  # the search's own figures (not on the one-phase search of before)
    cut_stats: list[dict] = []
    other_stats: list[dict] = []
    found: dict = {}  # (set, side, qf) -> [layers, right phase, right phase and quality, other grid]
    false: dict = {}  # (set, side, kind) -> [layers, grids found]
    kernels = sorted(KERNELS)
    for side in (256, 512):
        for name, k, c in _phase_layers(args, side):
            rng = np.random.default_rng([args.seed, side, k, len(name)])
            for qf in (10, 20, 30, 40):
                dy, dx = 0, 0
                while (dy, dx) == (0, 0):
                    dy, dx = (int(v) for v in rng.integers(0, 8, 2))
                layer = np.ascontiguousarray(encode(c, qf)[dy : dy + side, dx : dx + side])
                grid = jc.find_jpeg_grid(layer)
                n = found.setdefault((name, side, qf), [0, 0, 0, 0])
                n[0] += 1
                if grid is not None:
                    right = (grid.dy, grid.dx) == ((8 - dy) % 8, (8 - dx) % 8)
                    n[1] += right
                    n[2] += right and grid.qf == qf
                    n[3] += not right
                if stats:
                    cut_stats.append(_phase_stats(layer, ((8 - dy) % 8, (8 - dx) % 8)))
            qf = (10, 20, 30, 40)[k % 4]
            jpeg = encode(c, qf)[:side, :side]
            kinds = {
                "clean": c[:side, :side],
                "JPEG x0.75": resize(jpeg, 0.75, kernels[k % len(kernels)]),
                "JPEG x1.5": resize(jpeg, 1.5, kernels[(k + 1) % len(kernels)].replace("area", "linear")),
            }
            for kind, img in kinds.items():
                n = false.setdefault((name, side, kind), [0, 0])
                n[0] += 1
                n[1] += jc.find_jpeg_grid(img) is not None
                if stats:
                    other_stats.append(_phase_stats(img, None))
    print(f"\nfind_jpeg_grid on cropped JPEGs ({args.grid_phase} drawings per set, offsets 0-7 seeded)\n")
    print(
        "| set | side | QF | layers | right phase | right phase and QF | another grid |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for (name, side, qf), n in found.items():
        print(f"| {name} | {side} | {qf} | {n[0]} | {n[1]} | {n[2]} | {n[3]} |")
    tot = np.sum(list(found.values()), axis=0)
    print(f"| all | | | {tot[0]} | {tot[1]} | {tot[2]} | {tot[3]} |")
    print("\nfalse finds on layers that are no JPEG at their size\n")
    print("| set | side | layer | layers | grid found |\n|---|---:|---|---:|---:|")
    for (name, side, kind), n in false.items():
        print(f"| {name} | {side} | {kind} | {n[0]} | {n[1]} |")
    tot = np.sum(list(false.values()), axis=0)
    print(f"| all | | | {tot[0]} | {tot[1]} |")
    if stats:
        _print_phase_stats(cut_stats, other_stats)
    print(
        f"\ntime per call (CPU time of this process, so that other jobs count less; {args.threads} thread(s), "
        f"best of {5 * args.repeat}, first val drawing)\n"
    )
    print("| side | layer | grid | ms |\n|---:|---|---|---:|")
    for side in (256, 1024):
        _, _, c = next(_phase_layers(args, side))
        jpeg = encode(c, 20)
        for label, img in (
            ("QF 20", jpeg[:side, :side]),
            ("QF 85", encode(c, 85)[:side, :side]),
            ("QF 20 cut at (3, 5)", jpeg[3 : 3 + side, 5 : 5 + side]),
            ("clean", c[:side, :side]),
        ):
            img = np.ascontiguousarray(img)
            g = jc.find_jpeg_grid(img)
            t = _best(lambda img=img: jc.find_jpeg_grid(img), 5 * args.repeat, time.process_time)
            at = "none" if g is None else f"QF {g.qf} at ({g.dy}, {g.dx})"
            print(f"| {side} | {label} | {at} | {1e3 * t:.1f} |")
    print(flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/shared/data/lineart/val")
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--crop", type=int, default=768)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--detect", type=int, default=0, help="crops per set for the detection table (0: none)")
    p.add_argument("--kanji", default="/work/shared/data/kanji")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calibrate", type=int, default=0, help="val crops for the calibration table (0: none)")
    p.add_argument("--grid-strength", type=int, default=0, help="crop side for the block grid strength table (0: none)")
    p.add_argument("--train", default="/work/shared/data/lineart/train", help="drawings of the grid strength table")
    p.add_argument("--route", type=int, default=0, help="crop side for the routing table (0: none)")
    p.add_argument("--disagreement", type=int, default=0, help="crop side for the wild/default gap table (0: none)")
    p.add_argument("--resave-fit", type=int, default=0, help="crop side for the re-save fit table (0: none)")
    p.add_argument("--same-grid", type=int, default=0, help="crop side for the same-grid re-save table (0: none)")
    p.add_argument("--rim", type=int, default=0, help="crop side for the wild pair's rim table (0: none)")
    p.add_argument("--clean-pairs", type=int, default=0, help="crop side for the clean drawings' table (0: none)")
    p.add_argument("--colour-route", type=int, default=0, help="window side for the colour layers' table (0: none)")
    p.add_argument("--wild-colour-model", help="the colour wild backbone for --colour-route (default: the shipped one)")
    p.add_argument("--wild-cost", type=int, default=0, help="val crops for the wild pair's cost table (0: none)")
    p.add_argument("--wild-model", help="the wild backbone for --route (default: the shipped one)")
    p.add_argument("--wild-mask-model", help="with --wild-model: its mask network, or none (default: the shipped one)")
    p.add_argument("--families", nargs="+", help="with --detect or --route: only these families of training.degrade")
    p.add_argument("--every", type=int, default=4, help="--grid-strength and --route: every N-th drawing of --train")
    p.add_argument("--grid-phase", type=int, default=0, help="drawings per set for the grid phase table (0: none)")
    p.add_argument("--encoders", type=int, default=0, help="crops per set for the other encoders' table (0: none)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.grid_phase:
        grid_phase(args)
        if not (args.detect or args.calibrate or args.grid_strength or args.route or args.wild_cost or args.images):
            return 0
    from benchmarks.compare_waifu2x import choose_crop, crop, pick_files
    from core import jpeg_consistency as jc
    from core.pipeline import RestoreOptions, Restorer
    from training.data import load_drawing
    from training.degrade import encode

    if args.wild_model or args.wild_colour_model:
        from core.pipeline import DEFAULT_FILES, MODELS_DIR, colour_files, wild_files

        files = {role: MODELS_DIR / name for role, name in DEFAULT_FILES.items()}
        optional = wild_files()
        optional["wild"] = args.wild_model or optional["wild"]
        optional["wild_colour"] = args.wild_colour_model or optional["wild_colour"]
        if args.wild_mask_model:
            optional["wild_mask"] = None if args.wild_mask_model == "none" else args.wild_mask_model
        restorer = Restorer.from_files(**files, **optional, **colour_files(), device="cpu")
    else:
        restorer = Restorer.default(device="cpu")
    opts = RestoreOptions()
    if args.detect:
        detection(restorer, opts, args)
    if args.calibrate:
        calibration(restorer, args)
    if args.grid_strength:
        grid_strength(args)
    if args.route:
        routing(restorer, args)
    if args.disagreement:
        disagreement(restorer, args)
    if args.resave_fit:
        resave_fits(restorer, args)
    if args.rim:
        rim_margins(restorer, args)
    if args.same_grid:
        same_grid(restorer, args)
    if args.clean_pairs:
        clean_pairs(restorer, args)
    if args.colour_route:
        colour_routing(restorer, args)
    if args.wild_cost:
        wild_cost(restorer, args)
    if args.encoders:
        encoders(restorer, args)
        encoders_colour(restorer, args)
    if not args.images:
        return 0
    shipped = jc.outside_share, jc.same_grid_resave
    rows = []
    for path in pick_files(Path(args.data), args.images):
        full = load_drawing(path)
        c = crop(full, choose_crop(full, args.crop))
        for label, img in (("QF 20", encode(c, 20)), ("QF 30 then 75", encode(encode(c, 30), 75))):
            restorer.restore(img, opts)  # warm-up
            with_check = _best(lambda img=img: restorer.restore(img, opts), args.repeat)
            jc.outside_share, jc.same_grid_resave = (lambda *a, **k: 0.0), (lambda *a, **k: None)
            try:
                without = _best(lambda img=img: restorer.restore(img, opts), args.repeat)
            finally:
                jc.outside_share, jc.same_grid_resave = shipped
            grid = jc.find_jpeg_grid(img)
            res = restorer.restore(img, opts)
            t_out = _best(lambda r=res, i=img, g=grid: jc.outside_share(r.image, i, g, r.mask == 0), args.repeat)
            t_first = _best(lambda i=img, g=grid: jc.first_quality(i, g), args.repeat)
            t_same = _best(lambda r=res, i=img, g=grid: jc.same_grid_resave(i, r.image, g), args.repeat)
            rows.append((path.stem, label, with_check, without, t_out, t_first, t_same))
    print(
        "| drawing | input | pipeline, shipped (s) | without the check (s) | change | outside_share (ms) "
        "| first_quality (ms) | same_grid_resave (ms) |\n|---|---|---:|---:|---:|---:|---:|---:|"
    )
    for stem, label, a, b, o, f, g in rows:
        print(
            f"| {stem} | {label} | {a:.3f} | {b:.3f} | {100 * (a / b - 1):+.1f} % | {1e3 * o:.1f} | {1e3 * f:.1f} "
            f"| {1e3 * g:.1f} |"
        )
    a = sum(r[2] for r in rows)
    b = sum(r[3] for r in rows)
    print(
        f"\nall inputs: {a:.2f} s shipped, {b:.2f} s without the check ({100 * (a / b - 1):+.1f} %); "
        f"{args.crop} px crops, {args.threads} thread(s), best of {args.repeat}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
