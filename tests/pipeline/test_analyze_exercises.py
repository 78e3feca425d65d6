"""The whole analysis: gait and exercises in one pass, the exercise analysis reusing the pipeline's pelvis
chain (gait events, tilt, obliquity axes, quiet standing) instead of computing it again."""

from __future__ import annotations

import dataclasses

import pytest

from analytics.algorithms import exercise_sets, pelvic_obliquity
from analytics.pipeline import analyze_recording
from simulator import simulate_session
from simulator.session import SimulatedSession

SKIP = ("stand", "walk")


@pytest.fixture(scope="module")
def home() -> SimulatedSession:
    return simulate_session(seed=47, minutes=15)


def test_pipeline_exercises_equal_the_standalone_analysis_and_reuse_its_pelvis_chain(home, monkeypatch):
    standalone = exercise_sets.analyze_exercise_sets(home.recording)
    calls = []
    original = pelvic_obliquity.detect_gait_events
    monkeypatch.setattr(pelvic_obliquity, "detect_gait_events", lambda *a: calls.append(1) or original(*a))
    doc = analyze_recording(home.recording)
    assert len(calls) == 1, "gait events were detected more than once in one analysis"
    assert doc["exercises"] == standalone
    truth = [t for t in home.truth["exercises"] if t["exercise"] not in SKIP]
    got = [e for e in doc["exercises"] if e["exercise"] not in SKIP]
    assert [(e["exercise"], e["side"], e["reps"]) for e in got] == [
        (t["exercise"], t["side"], t["reps"]) for t in truth
    ]
    assert not [f for f in doc["quality"]["flags"] if f["code"] == "exercises_failed"]


def test_pipeline_detects_sets_without_markers(home):
    doc = analyze_recording(dataclasses.replace(home.recording, markers=()))
    truth = [(t["exercise"], t["side"], t["reps"]) for t in home.truth["exercises"] if t["exercise"] not in SKIP]
    got = [(e["exercise"], e["side"], e["reps"]) for e in doc["exercises"] if e["segmented_by"] == "detected"]
    assert got == truth
