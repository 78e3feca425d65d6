"""The analysis of one recording: three IMUs in, one gaitsym.result/1 document out. Pure: no IO.

Steps (each a function of its own module here, passing typed results; the algorithms in analytics.algorithms,
see there for the papers and units):

1. Quality of each stream (streams; signal_quality): saturated samples and stuck (dropped-out) streams.
2. Pelvis (pelvis; pelvic_obliquity.pelvis_signals, computed once and shared with the exercise analysis): gyro bias
   from still periods and orientation (tilt), walking bouts and pelvis-only events (gait_events), body axes
   for obliquity (pelvis_alignment on tilt-levelled accelerations, pelvic_obliquity.obliquity_axes), quiet
   standing and the standing reference of obliquity.
3. Thighs (thighs): axes from standing + walking (thigh_alignment), is each sensor on a thigh and on its named side
   (side_check), toe offs and initial contacts per leg (thigh_events).
4. Events per walking bout (events): from both thighs when both are usable over the whole bout, otherwise from the
   pelvis alone (with sides from a usable thigh when there is one); ``gait.bouts[i].source`` says which. Thigh
   contacts must be confirmed by a pelvis contact (stride_checks.confirm_contacts), the rest are dropped.
5. Strides (strides, asymmetry_gate) per side with stance, swing and step time and the pelvic drop relative
   to standing; strides that break a plausibility rule (stride_checks.stride_problems) are flagged and
   excluded; the summary rule (analytics.results) per session and per bout, with a bootstrap CI of SI (per bout
   only with MIN_STRIDES_PER_SIDE strides a side); the session's stance and step numbers are withheld when too
   few strides survive or the thigh and pelvis events disagree (stride_checks.asymmetry_verdict), and
   ``gait.summary.stance_asymmetry_evidence`` says what the asymmetry rests on.
6. Exercises (exercise_sets.analyze_exercise_sets, given the pelvis signals of step 2).
7. Flags (result.Flags, raised by every step): anything that limits a number is said next to it
   (``quality.flags``); side-labelled numbers that cannot be trusted are withheld (null) and listed in
   ``quality.withheld``.

``analyze`` returns the typed AnalysisResult (result), ``analyze_recording`` its document.

Times in s from the first sample, angles in deg, angular velocities deg/s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analytics.algorithms.exercise_sets import analyze_exercise_sets
from analytics.errors import AnalyticsError, InsufficientData, InvalidSignal
from analytics.pipeline.events import events_per_bout
from analytics.pipeline.pelvis import PelvisStep, analyze_pelvis
from analytics.pipeline.result import (
    GENERATOR_NAME,
    GENERATOR_VERSION,
    AnalysisResult,
    Flags,
    Quality,
    Record,
    RecordingInfo,
)
from analytics.pipeline.streams import check_streams
from analytics.pipeline.strides import summarise_gait
from analytics.pipeline.thighs import analyze_thighs
from analytics.recording.io import Recording

__all__ = [
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "AnalysisResult",
    "ExerciseAnalyzer",
    "analyze",
    "analyze_recording",
    "default_exercise_analyzer",
]

ExerciseAnalyzer = Callable[[Recording], list[dict[str, Any]]]


def default_exercise_analyzer() -> ExerciseAnalyzer | None:
    """analytics.algorithms.exercise_sets.analyze_exercise_sets (analyze_recording passes it the pelvis
    signals it has already computed)."""
    analyzer: ExerciseAnalyzer = analyze_exercise_sets
    return analyzer


def analyze_recording(
    recording: Recording,
    *,
    exercise_analyzer: ExerciseAnalyzer | bool | None = True,
    include_obliquity: bool = False,
) -> dict[str, Any]:
    """Analyse one recording into a gaitsym.result/1 document (source "analysis"): ``analyze(...).to_dict()``."""
    return analyze(recording, exercise_analyzer=exercise_analyzer, include_obliquity=include_obliquity).to_dict()


def analyze(
    recording: Recording,
    *,
    exercise_analyzer: ExerciseAnalyzer | bool | None = True,
    include_obliquity: bool = False,
) -> AnalysisResult:
    """Analyse one recording (source "analysis"); see the module docstring for the steps.

    ``exercise_analyzer``: a callable (recording) -> list of exercise_set entries; True (default) uses
    default_exercise_analyzer(); None or False analyses no exercises. ``include_obliquity`` adds the
    ``pelvis`` block with the obliquity trajectory relative to standing. Raises InsufficientData without a
    pelvis sensor or with too short a recording, InvalidSignal for malformed arrays.
    """
    if not isinstance(recording, Recording):
        raise InvalidSignal(f"analyze_recording needs an analytics.recording.io.Recording, got {type(recording)}")
    if "pelvis" not in recording.sensors:
        raise InsufficientData(
            f"the recording has no pelvis sensor (placements: {', '.join(recording.sensors) or 'none'}); "
            "pelvic drop and gait events need it"
        )
    fs = float(recording.sampling_rate_hz)
    flags = Flags()
    withheld: list[str] = []
    flags.add(
        "dynamic_calibration_relative",
        "info",
        "pelvic angles are dynamic and relative to the patient's own quiet standing in this session: static "
        "pelvic obliquity cannot be separated from how the sensor sits on the body",
    )
    streams = check_streams(recording, fs, flags)  # 1
    pelvis = analyze_pelvis(recording, fs, streams, flags, withheld)  # 2
    thighs = analyze_thighs(recording, fs, streams, pelvis, flags)  # 3
    events = events_per_bout(recording.n_samples, fs, streams, pelvis, thighs, flags)  # 4
    gait = summarise_gait(  # 5
        fs, streams, pelvis, events, thighs.sides_trusted, flags, withheld, include_obliquity=include_obliquity
    )
    alignment = {"pelvis": pelvis.alignment, **thighs.alignment}
    del streams, thighs, events  # (memory: the exercise analysis comes next)
    exercises = _exercises(recording, pelvis, exercise_analyzer, flags)  # 6
    subject = recording.subject.get("id")
    return AnalysisResult(
        recording=RecordingInfo(
            duration_s=recording.duration_s,
            sampling_rate_hz=fs,
            placements=list(recording.sensors),
            subject=subject if isinstance(subject, str) else None,
            task=recording.task,
        ),
        gait=gait.gait,
        exercises=exercises,
        quality=Quality(flags.items, alignment, withheld),
        pelvis=gait.obliquity,
    )


def _exercises(
    recording: Recording, pelvis: PelvisStep, exercise_analyzer: ExerciseAnalyzer | bool | None, flags: Flags
) -> list[Record]:
    """Step 6: the exercise sets (exercise_sets.analyze_exercise_sets, given the pelvis chain of step 2); a
    failure is flagged, never fatal to the gait numbers."""
    analyzer: ExerciseAnalyzer | None
    if exercise_analyzer is True:
        analyzer = default_exercise_analyzer()
        if analyzer is None:
            flags.add("exercises_not_analysed", "info", "exercise analysis is not installed in this build")
    elif exercise_analyzer is False or exercise_analyzer is None:
        analyzer = None
    else:
        analyzer = exercise_analyzer
    exercises: list[Record] = []
    if analyzer is not None:
        try:
            if analyzer is analyze_exercise_sets:  # the default: shares the pelvis chain computed above
                exercises = analyze_exercise_sets(recording, pelvis=pelvis.signals)
            else:
                exercises = list(analyzer(recording))
        except AnalyticsError as exc:
            flags.add("exercises_failed", "warning", f"exercise analysis failed: {exc}")
    return exercises
