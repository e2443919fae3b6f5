"""Precision and recall of the PII detector per entity type on the labelled corpus (tests/proxy/pii_corpus.py),
with floors; the figures are printed (``-s``) and quoted in docs/guardrails.md."""

from __future__ import annotations

from collections import Counter

from modelgate_proxy.stages.guardrails.pii import detect

from .pii_corpus import NEGATIVES, POSITIVES

FLOORS = {"precision": 0.95, "recall": 0.95}


def score() -> dict[str, tuple[float, float, int]]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for text, expected in [*POSITIVES, *((t, []) for t in NEGATIVES)]:
        found = {(f.entity, text[f.start:f.end]) for f in detect(text)}
        want = set(expected)
        for entity, _value in found & want:
            tp[entity] += 1
        for entity, _value in found - want:
            fp[entity] += 1
        for entity, _value in want - found:
            fn[entity] += 1
    out = {}
    for entity in sorted(set(tp) | set(fp) | set(fn)):
        precision = tp[entity] / (tp[entity] + fp[entity]) if tp[entity] + fp[entity] else 0.0
        recall = tp[entity] / (tp[entity] + fn[entity]) if tp[entity] + fn[entity] else 0.0
        out[entity] = (precision, recall, tp[entity] + fn[entity])
    return out


def test_precision_and_recall_per_entity() -> None:
    figures = score()
    for entity, (precision, recall, n) in figures.items():
        print(f"| {entity} | {n} | {precision:.2f} | {recall:.2f} |")
    assert set(figures) == {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
                            "ES_NIF", "IT_FISCAL_CODE", "IN_AADHAAR"}
    for entity, (precision, recall, _n) in figures.items():
        assert precision >= FLOORS["precision"], entity
        assert recall >= FLOORS["recall"], entity


def test_the_score_can_fail() -> None:
    """The scorer counts a wrong label as a false positive and a miss (it is not always 1.0)."""
    from . import pii_corpus

    saved = list(pii_corpus.POSITIVES)
    try:
        pii_corpus.POSITIVES[:] = [("server 192.0.2.1 is down", [("PHONE_NUMBER", "192.0.2.1")])]
        figures = score()
    finally:
        pii_corpus.POSITIVES[:] = saved
    assert figures["PHONE_NUMBER"][1] == 0.0
    assert figures["IP_ADDRESS"][0] == 0.0
