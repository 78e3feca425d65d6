"""The analysis steps on their own: what one step hands the next, and the typed result behind the document."""

from __future__ import annotations

import numpy as np
from analysis_testlib import walk, with_sensors

from analytics.pipeline.analyze import analyze, analyze_recording
from analytics.pipeline.result import Flags, ObliquityTrace
from analytics.pipeline.streams import check_streams
from analytics.recording.io import SensorData
from analytics.results import validate_result


def test_a_dropped_out_thigh_is_marked_for_the_later_steps_and_flagged_with_its_span():
    rec = walk().recording
    fs = float(rec.sampling_rate_hz)
    thigh = rec.sensors["left_thigh"]
    acc, gyr = thigh.acc_mps2.copy(), thigh.gyr_dps.copy()
    i0, i1 = int(20 * fs), int(25 * fs)
    acc[i0:i1], gyr[i0:i1] = acc[i0], gyr[i0]
    flags = Flags()
    streams = check_streams(
        with_sensors(rec, {**rec.sensors, "left_thigh": SensorData("left_thigh", acc, gyr)}), fs, flags
    )
    assert streams.stuck["left_thigh"][i0 + 10 : i1 - 10].all()
    assert not streams.stuck["pelvis"].any() and not streams.stuck["right_thigh"].any()
    dropouts = [f for f in flags.items if f.code == "sensor_dropout"]
    assert [f.extra["placement"] for f in dropouts] == ["left_thigh"]
    assert dropouts[0].extra["start_s"] <= 20.0 + 1 and dropouts[0].extra["end_s"] >= 25.0 - 1


def test_the_typed_result_is_what_the_document_says():
    rec = walk().recording
    result = analyze(rec, exercise_analyzer=None, include_obliquity=True)
    doc = result.to_dict()
    validate_result(doc)
    assert doc == analyze_recording(rec, exercise_analyzer=None, include_obliquity=True)
    assert [f.code for f in result.quality.flags] == [f["code"] for f in doc["quality"]["flags"]]
    assert isinstance(result.pelvis, ObliquityTrace) and len(result.pelvis.obliquity_deg) == rec.n_samples
    assert result.pelvis.standing_baseline_deg is not None
    assert np.isfinite(result.gait.summary["stance_si_pct"])
    assert "pelvis" not in analyze(rec, exercise_analyzer=None).to_dict()
