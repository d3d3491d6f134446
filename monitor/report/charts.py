"""The report's charts, from what `ReplayCollector` gathered (inline SVG strings).

Every chart is bounded in size whatever the stream's length: point clouds are thinned to
a fixed budget (flagged and labelled events first), curves to a few hundred vertices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.report.collect import ReplayCollector
from monitor.report.svg import Plot, Tick, fmt
from monitor.sinks.labels import bounded_label

Floats = npt.NDArray[np.float64]
GREY, BLUE, RED, ORANGE, PURPLE, GREEN = ("#b4bcc8", "#3b6fb6", "#d62728", "#f39c12",
                                          "#7b3fb0", "#2ca02c")
STORY_POINTS = 4_000  # unflagged events drawn in the p-value story (flagged: up to 3,000)
CURVE_POINTS = 400


def thin(idx: npt.NDArray[np.int64], budget: int) -> npt.NDArray[np.int64]:
    """At most `budget` of `idx`, evenly spread (deterministic).

    >>> thin(np.arange(10), 4).tolist()
    [0, 3, 6, 9]
    """
    if len(idx) <= budget:
        return idx
    return idx[np.linspace(0, len(idx) - 1, budget).round().astype(np.int64)]


def _log_p_ticks(top: float) -> list[Tick]:
    step = max(1, math.ceil(top / 6))
    names = {0: "1", 1: "0.1", 2: "0.01"}
    return [(float(k), names.get(k, f"1e-{k}")) for k in range(0, int(top) + 1, step)]


def outlier_story(c: ReplayCollector, width: int = 1100) -> str:
    """-log10 p over event index: flagged events red, labelled fraud orange, the top
    outliers circled (hover for the id), alpha dashed, drift alarms as vertical lines."""
    p, outlier, label = c.array("p"), c.array("outlier").astype(bool), c.array("label")
    scored = np.flatnonzero(~np.isnan(p))
    y = -np.log10(np.clip(p, 1e-300, 1.0))
    top = max(float(np.nanmax(y[scored])) if len(scored) else 1.0,
              -math.log10(c.alpha) + 0.5, 1.0) * 1.05
    plot = Plot(width, 300, (0, max(c.events, 1)), (0, top), title="p-value by event",
                xlabel="event index", ylabel="p-value (log scale)")
    flagged = scored[outlier[scored]]
    fraud = scored[label[scored] == 1]
    rest = scored[~outlier[scored]]
    rest = thin(rest, STORY_POINTS)
    plot.points(rest, y[rest], BLUE, 2.5, "scored event", opacity=0.45)
    if len(fraud):
        f = thin(fraud, 3_000)
        plot.points(f, y[f], ORANGE, 7, "labelled fraud")
    f = thin(flagged, 3_000)
    plot.points(f, y[f], RED, 3.5, f"outlier (p ≤ {fmt(c.alpha)})")
    plot.hline(-math.log10(c.alpha), RED)
    plot.vlines([a.index for a in c.alarms], PURPLE, "drift alarm")
    tops = c.top_outliers()
    plot.marks([t["index"] for t in tops], [y[t["index"]] for t in tops],
               [f"{t['id']} p={fmt(t['p_value'])} risk={t['risk']:.3f}" for t in tops], "#222",
               label="top outlier (hover for its id)" if tops else "")
    return plot.axes(yticks=_log_p_ticks(top)).svg()


def p_histogram(c: ReplayCollector, bins: int = 20) -> str:
    """Histogram of the scored p-values against the uniform a calibrated monitor gives
    under no drift (and no anomalies)."""
    p = c.array("p")
    p = p[~np.isnan(p)]
    counts, edges = np.histogram(p, bins=bins, range=(0.0, 1.0))
    expected = len(p) / bins
    hi = max(float(counts.max()) if len(counts) else 1.0, expected) * 1.1
    plot = Plot(520, 260, (0, 1), (0, max(hi, 1.0)), title="p-value histogram",
                xlabel="p-value", ylabel="events")
    plot.bars(edges[:-1], edges[1:], counts, BLUE, "observed")
    plot.hline(expected, "#333", "uniform (calibrated)")
    return plot.axes().svg()


def drift_chart(c: ReplayCollector, segment: str, threshold: float, width: int = 540) -> str:
    """A segment's detector statistic (sampled after each batch) against its threshold,
    with the alarms at the statistic they fired at."""
    at, stat = c.drift_series(segment)
    alarms = [a for a in c.alarms if a.segment == segment]
    ly = np.log10(1.0 + np.nan_to_num(stat))
    lt = math.log10(1.0 + threshold)
    top = max(lt, float(ly.max()) if len(ly) else 0.0,
              *(math.log10(1 + a.statistic) for a in alarms)) * 1.08
    plot = Plot(width, 220, (0, max(c.events, 1)), (0, top),
                title=f"segment {bounded_label(segment)}", xlabel="event index",
                ylabel="statistic (1 + R, log)")
    if len(at):
        plot.line(np.concatenate([[0], at]), np.concatenate([[0.0], ly]), BLUE, 1.5,
                  "Shiryaev-Roberts R (per batch)")
    plot.hline(lt, RED, f"threshold {fmt(threshold)}")
    if alarms:
        plot.points([a.index for a in alarms], [math.log10(1 + a.statistic) for a in alarms],
                    PURPLE, 8, "alarm")
    ticks = [(float(k), "1" if k == 0 else f"1e{k}") for k in range(0, int(top) + 1)]
    return plot.axes(yticks=ticks).svg()


def pca_2d(ref: npt.NDArray[np.float32], stream: npt.NDArray[np.float32]
           ) -> tuple[Floats, Floats, tuple[float, float]]:
    """Both samples projected on the first two principal axes of the reference (of the
    stream when there is no reference sample), and the share of variance each explains.

    A randomized SVD (range finder with two power iterations, fixed seed): the top two
    axes of a few thousand rows in a few milliseconds, whatever the embedding width.
    """
    base = (ref if len(ref) >= 3 else stream).astype(np.float64)
    mu = base.mean(axis=0)
    a = base - mu
    k = min(8, *a.shape)
    q = a @ np.random.default_rng(0).standard_normal((a.shape[1], k))
    for _ in range(2):
        q, _ = np.linalg.qr(a @ (a.T @ q))
    _, s, vt = np.linalg.svd(q.T @ a, full_matrices=False)
    axes = np.zeros((a.shape[1], 2))
    axes[:, : min(2, len(vt))] = vt[:2].T
    total = max(float((a * a).sum()), 1e-12)
    var = np.r_[s[:2] ** 2 / total, 0.0, 0.0]
    proj = [(x - mu) @ axes if len(x) else np.zeros((0, 2)) for x in (ref, stream)]
    return proj[0], proj[1], (float(var[0]), float(var[1]))


def embedding_map(c: ReplayCollector, size: int = 560) -> str:
    ref, stream = c.reference_sample, c.stream_sample
    if len(ref.x) + len(stream.x) < 3:
        return "<p>Too few embedded events for a map.</p>"
    r, s, (v1, v2) = pca_2d(ref.x, stream.x)
    both = np.vstack([r, s])
    lo, hi = np.percentile(both, 0.2, axis=0), np.percentile(both, 99.8, axis=0)
    pad = (hi - lo) * 0.08 + 1e-9
    plot = Plot(size, size, (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1]),
                title="embeddings, first two principal axes",
                xlabel=f"PC1 ({v1:.0%} of reference variance)", ylabel=f"PC2 ({v2:.0%})")
    clip = np.clip(r, lo - pad, hi + pad)
    plot.points(clip[:, 0], clip[:, 1], GREY, 6, f"reference sample ({len(r):,})")
    if len(s):
        s = np.clip(s, lo - pad, hi + pad)
        out = stream.meta["outlier"].astype(bool)
        lab = stream.meta["label"] == 1
        plot.points(s[~out, 0], s[~out, 1], BLUE, 3, f"stream sample ({len(s):,})", 0.55)
        if lab.any():
            plot.points(s[lab, 0], s[lab, 1], ORANGE, 7, "labelled fraud")
        plot.points(s[out, 0], s[out, 1], RED, 3.5, "outlier")
    return plot.axes().svg()


def curves(labels: npt.NDArray[np.bool_], scores: Floats, points: int = CURVE_POINTS
           ) -> tuple[Floats, Floats, Floats]:
    """(false-positive rate, recall, precision) at each distinct threshold, thinned.

    >>> fpr, tpr, prec = curves(np.array([0, 0, 1, 1], bool), np.array([.1, .4, .35, .8]))
    >>> fpr.tolist(), tpr.tolist(), prec.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0], [1.0, 1.0, 0.5, 0.6667, 0.5])
    """
    order = np.argsort(-scores, kind="mergesort")
    y, s = labels[order], scores[order]
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # end of each tie group
    tp = np.cumsum(y)[last].astype(np.float64)
    fp = (last + 1) - tp
    pos, neg = max(float(y.sum()), 1.0), max(float((~y).sum()), 1.0)
    fpr = np.r_[0.0, fp / neg]
    tpr = np.r_[0.0, tp / pos]
    prec = np.r_[1.0, np.round(tp / (tp + fp), 4)]
    keep = thin(np.arange(len(fpr)), points)
    return fpr[keep], tpr[keep], prec[keep]


def roc_pr(labels: npt.NDArray[np.bool_], named: Sequence[tuple[str, Floats, str, float]]
           ) -> tuple[str, str]:
    """ROC and precision-recall charts of each (name, scores, colour, AUROC)."""
    roc = Plot(380, 380, (0, 1), (0, 1), title="ROC", xlabel="false-positive rate",
               ylabel="true-positive rate")
    roc.line([0, 1], [0, 1], "#999", 1, dash="4 3")
    pr = Plot(380, 380, (0, 1), (0, 1), title="precision-recall", xlabel="recall",
              ylabel="precision")
    pr.hline(float(labels.mean()), "#999", "prevalence")
    for name, scores, color, area in named:
        fpr, tpr, prec = curves(labels, scores)
        roc.line(fpr, tpr, color, 2, f"{name} (AUROC {area:.3f})")
        pr.line(tpr[1:], prec[1:], color, 2, name)
    return roc.axes().svg(), pr.axes().svg()


def labelled(c: ReplayCollector, report: dict[str, Any]) -> tuple[str, str] | None:
    """ROC/PR of the score and the risk over the labelled scored events, if any."""
    p, label = c.array("p"), c.array("label")
    keep = ~np.isnan(p) & (label >= 0)
    y = label[keep] == 1
    if not len(y) or y.all() or not y.any():
        return None
    named = [("score", c.array("score")[keep], BLUE, report.get("auroc", math.nan)),
             ("risk", c.array("risk")[keep], GREEN, report.get("auroc_risk", math.nan))]
    return roc_pr(y, named)
