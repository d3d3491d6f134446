"""The sections the pipeline reads: which fields feed the embedding, the encoders, the
reference and calibration per segment, and drift detection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from monitor.config.base import Section
from monitor.events import DEFAULT_SEGMENT


class NumericField(Section):
    """A numeric input field; `log` applies sign(x)·log1p(|x|) first (heavy-tailed amounts)."""

    name: str = Field(description="field name in the event")
    log: bool = Field(False, description="apply sign(x)·log1p(|x|) before scaling")


class FieldsConfig(Section):
    """Which fields of an event feed which block of the embedding."""

    id: str | None = Field(None, description="id field; absent -> the line/offset number")
    timestamp: str | None = Field(None, description="event-time field (cyclic hour/day "
                                  "features, latency, time-based forgetting)")
    timestamp_format: Literal["auto", "epoch_s", "epoch_ms", "iso8601"] = Field(
        "auto", description="auto: numbers > 1e11 are ms, strings ISO-8601")
    segment: str | None = Field(None, description="field whose value selects the segment "
                                "(own reference, calibration, detector); none = one segment")
    segment_buckets: dict[str, int] = Field(
        default_factory=dict, description='split a hot segment: {"s2": 4} makes the events '
        'of segment s2 segments "s2#0" ... "s2#3" by CRC-32 of the event id, each with its '
        "own model, warm-up and detector (with kafka.repartition, spread over scorer "
        "partitions); counts >= 2; needs `segment`")
    label: str | None = Field(None, description="confirmed-fraud label field, if any")
    positive: list[str] = Field(
        default_factory=lambda: ["1", "1.0", "true", "fraud", "yes"],
        description="label values (as text, case-insensitive) that mean fraud",
    )
    text: list[str] = Field(default_factory=list, description="text fields, embedded one "
                            "by one (cached per distinct value) and averaged")
    template: str | None = Field(
        None, description='render text fields into one string, e.g. "{merchant} {category}"'
    )
    numeric: list[NumericField] = Field(default_factory=list, description="numeric fields, "
                                        "robustly standardised online")
    categorical: list[str] = Field(default_factory=list, description="categorical fields, "
                                   "feature-hashed")
    context: list[str] | None = Field(
        None, description="with per-field evidence: categorical fields within whose value "
        "each numeric is also judged (an amount against its category's amounts); default: "
        "all categorical fields and, with a timestamp, the hour of day; [] for none")
    required: list[str] = Field(default_factory=list, description="fields that must be present")
    max_event_bytes: int = Field(65_536, gt=0, description="larger events are rejected")

    @field_validator("segment_buckets")
    @classmethod
    def _two_or_more(cls, value: dict[str, int]) -> dict[str, int]:
        small = {name: n for name, n in value.items() if n < 2}
        if small:
            raise ValueError(f"bucket counts must be at least 2: {small}")
        return value

    @model_validator(mode="after")
    def _something_to_embed(self) -> FieldsConfig:
        if not (self.text or self.template or self.numeric or self.categorical):
            raise ValueError("declare at least one text, template, numeric or categorical field")
        unknown = sorted(set(self.context or []) - set(self.categorical))
        if unknown:
            raise ValueError(f"context names fields that are not categorical: {unknown}")
        if self.segment_buckets and self.segment is None:
            raise ValueError("segment_buckets splits segments: set fields.segment too")
        if "" in self.segment_buckets:
            raise ValueError("segment_buckets: events with an empty segment value are in "
                             f"segment {DEFAULT_SEGMENT!r}: list that name instead")
        return self


class EmbedConfig(Section):
    """Encoders. `model` is a local directory or "default" (the bundled all-MiniLM-L6-v2)."""

    model: str = Field("default", description='local sentence-transformers folder, or '
                       '"default"')
    profile: Literal["torch", "onnx-int8", "static"] = Field(
        "torch", description="text back-end: torch (reference quality), onnx-int8 (~1.8x "
        "end to end, -0.002 AUROC on CLINC150), static (model2vec, ~55x end to end, -0.07 "
        "AUROC); fast ones need the [fast] extra")
    cache_dir: str | None = Field(None, description="where onnx-int8/static models are built "
                                  "on first use; default ~/.cache/monitor/models")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA if present")
    batch_size: int = Field(32, gt=0, le=1024, description="texts per model call")
    max_seq_length: int = Field(128, gt=0, le=512, description="tokens kept per text")
    cache_size: int = Field(100_000, ge=0, description="LRU entries of text embeddings")
    threads: int | None = Field(None, gt=0, description="torch threads; default = usable cores")
    text_weight: float = Field(1.0, ge=0, description="weight of the text block")
    tabular_weight: float = Field(1.0, ge=0, description="weight of the tabular block")
    hash_dim: int = Field(16, gt=0, le=4096, description="feature-hashing width per categorical")
    robust_window: int = Field(20_000, gt=10, description="values kept per numeric for median/IQR")


class ScoreConfig(Section):
    """Reference centroids, calibration and known-fraud prototypes, per segment."""

    alpha: float = Field(0.001, gt=0, lt=1, description="outlier when p-value <= alpha "
                         "(the false-positive rate under no drift)")
    learn_p: float = Field(
        0.2, ge=0, lt=1,
        description="only events with p-value above this update the reference (>= alpha)",
    )
    k: int | Literal["auto"] = Field("auto", description="centroids; auto = reference size / 50")
    k_min: int = Field(8, gt=0, description="lower bound of auto k")
    k_max: int = Field(512, gt=0, description="upper bound of auto k")
    warmup: int = Field(500, ge=20, description="events a segment needs before it scores")
    holdout: float = Field(0.2, gt=0, lt=1, description="share of warm-up used for calibration")
    reservoir: int = Field(2000, ge=20, description="calibration scores kept per segment")
    half_life_events: float | None = Field(20_000, gt=0, description="forgetting: weight "
                                           "halves after this many events")
    half_life_seconds: float | None = Field(None, gt=0, description="forgetting in event "
                                            "time (needs fields.timestamp)")
    normalise_by_scale: bool = Field(
        False, description="divide distance by the centroid's scale (cost 0.04 AUROC on CLINC150)"
    )
    learn_block: int = Field(
        64, gt=0, description="updates applied every N events of a segment (batch-invariant; "
        "larger amortises the update, smaller adapts sooner)"
    )
    fraud_prototypes: int = Field(512, ge=0, description="confirmed-fraud prototypes kept "
                                  "per segment")
    max_segments: int = Field(1000, gt=0, description="segments kept; least recently seen evicted")
    exemplars: int = Field(3, ge=0, description="example event ids kept per centroid")
    field_evidence: bool | Literal["auto"] = Field(
        "auto", description="judge each numeric, categorical and time field on its own too "
        "(numerics also within their context), combined with the embedding's evidence into "
        "one calibrated p-value; auto = when text and tabular fields are mixed (measured: "
        "it lifts mixed events, while the joint tabular space ranks tabular-only data "
        "better); false = the embedding alone")
    text_evidence: Literal["joint", "per_field"] = Field(
        "joint", description="with per-field evidence and text fields: per_field = "
        "each text field (or the template) against its own reference and calibration, the "
        "text group as the smallest of its fields' p-values calibrated once, in place of "
        "the joint embedding's distance; joint = the embedding's distance of all fields "
        "together (one column)")
    calibrate_p: float = Field(
        0.01, gt=0, lt=1, description="events with a p-value at or below this (or alpha) "
        "never enter the calibration pools: draws from the fitted tail stand in for them "
        "at the rate no drift would produce, so a burst or the first wave of a drift "
        "cannot lift the bar, and the p-values keep their evidence against the reference")
    combine_below: float = Field(
        0.01, gt=0, lt=1, description="with per-field evidence: besides the smallest "
        "column p-value, every other "
        "column below this adds its evidence to the combined score (which is calibrated "
        "itself, so any value keeps the p-value valid)")
    context_prior: float = Field(20.0, gt=0, description="with per-field evidence: "
                                 "pseudo-events by which a small context's mean and spread "
                                 "lean on the global ones")
    buckets: int = Field(256, ge=32, le=65_536, description="with per-field evidence: hash "
                         "buckets per categorical field for value counts and contexts (memory "
                         "per segment; values that share a bucket count as one)")
    tail: bool = Field(True, description="extrapolate p-values beyond the largest "
                       "calibration score with a fitted exponential tail, so alpha below "
                       "1/(n+1) is reachable")
    seed: int = Field(0, description="seeds k-means and the p-value randomisation")


class DriftConfig(Section):
    """Anytime-valid drift detection and the descriptive window gauges."""

    false_alarm_probability: float = Field(
        0.01, gt=0, lt=1, description="per stream over `horizon` events, shared by segments"
    )
    horizon: int = Field(10_000, gt=0, description="events per segment the budget covers")
    threshold: float | None = Field(None, gt=1, description="override the derived threshold")
    window: int = Field(500, gt=1, description="events in the descriptive gauges' window")
    hysteresis: int = Field(500, ge=0, description="quiet events before a drift resolves")
    rebaseline: bool = Field(
        False, description="after a confirmed drift, gather the next `score.warmup` events "
        "(scoring them with the old state meanwhile) and refit on them; off by default: "
        "an attack that sets off the alarm would become the new normal")
