"""A small report built from hand-made stored rows (pure: no store, no analysis) for the page tests."""

from __future__ import annotations

from analytics.stores.model import ResultRow
from report.gather import report_from_rows
from report.model import SessionReport

DAY_US = 86400 * 1_000_000
T0 = 1_780_000_000 * 1_000_000


def _summary(subject: str, session: str, t_us: int, none: dict[str, object]) -> list[ResultRow]:
    common = {"session": session, "result_version": 1, "duration_s": 720.0}
    left = {**common, "n_strides": 40, "stance_time_s": 0.70, "step_time_s": 0.56, "pelvic_drop_deg": 3.1}
    right = {**common, "n_strides": 41, "stance_time_s": 0.68, "step_time_s": 0.55, "pelvic_drop_deg": 2.9}
    return [
        ResultRow("session_summary", t_us, {"side": "none", "subject": subject}, {**common, **none}),
        ResultRow("session_summary", t_us, {"side": "left", "subject": subject}, left),
        ResultRow("session_summary", t_us, {"side": "right", "subject": subject}, right),
    ]


def sample_report(subject: str = "P-001", session: str = "S2") -> SessionReport:
    current = _summary(
        subject,
        session,
        T0,
        {
            "stance_si_pct": 2.9,
            "stance_si_status": "reported",
            "stance_si_ci95_low_pct": 1.0,
            "stance_si_ci95_high_pct": 4.8,
            "stance_event_source": "thigh+pelvis",
            "flags": "dynamic_calibration_relative,implausible_strides",
        },
    )
    current.append(
        ResultRow(
            "exercise_set",
            T0 + 60_000_000,
            {"exercise": "clam", "side": "left", "subject": subject},
            {
                "session": session,
                "set": 1,
                "reps": 5,
                "thigh_rotation_amplitude_deg": 33.0,
                "flags": f"partial_repetitions: 1 below 50 % ({subject})",
            },
        )
    )
    earlier = _summary(
        subject,
        "S1",
        T0 - 7 * DAY_US,
        {"stance_si_status": "withheld", "stance_si_withheld_reason": "side_labels_untrusted"},
    )
    return report_from_rows(subject, session, current, earlier, generated_us=T0 + DAY_US)
