"""A real InfluxDB 1.6 (auth on) seeded with several patients, for every dashboard query.

Sessions are real analyses of simulated recordings (`testing.dashboard_seed.analysed`), written through the store
at other dates and for other subjects, as the worker writes them:

| subject      | sessions (days before now)                    | what a clinician must see                          |
|--------------|-----------------------------------------------|----------------------------------------------------|
| p-steady     | home session every 2nd day 1..55; day 9       | within the band; flagged latest session (data gap);|
|              | withheld; day 1 with raw samples and a gap    | plans; exercise quality; one session with raw      |
| p-asym       | days 1..14 asymmetric (stance SI ~12 %, drop  | outside the band (pelvic drop); worsening over 4   |
|              | SI ~70 %), 15..28 home                        | weeks (stance)                                     |
| p-withheld   | day 2 withheld, days 4..20 home               | latest session withheld                            |
| p-lapsed     | days 10..40 home                              | no session in 7 days                               |
| p-old        | days 1..10 asymmetric, stored without the     | unknown, never normal, never "outside"             |
|              | fields gaitsym.store/1 gained for dashboards  |                                                    |
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.stores.influx import InfluxConfig, InfluxStore
from analytics.stores.plans import cleared_plan, make_plan
from analytics.stores.quarantine import Quarantine
from testing.dashboard_seed import DAY_US, Seeded, analysed, gap_record, with_gap_flag, write_raw, write_session
from testing.grafana_queries import GrafanaInflux
from testing.influxdb_server import ADMIN_PASSWORD, ADMIN_USER, WORKER_PASSWORD, WORKER_USER, InfluxDB

GRAFANA_USER, GRAFANA_PASSWORD = "grafana", "grafana-test-pw"
HOUR_US = 3600 * 1_000_000


RAW_SWITCH_SAMPLE = 41_237
"""Where the seeded session's raw samples switch from one point per sample to packed (about halfway; inside a 0.1-s
period and a panel bucket)."""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, influxdb: InfluxDB) -> Iterator[Seeded]:
    server = influxdb
    admin_config = InfluxConfig(url=server.url, username=ADMIN_USER, password=ADMIN_PASSWORD)
    admin = InfluxStore(admin_config, Quarantine(tmp_path_factory.mktemp("qa") / "quarantine.sqlite"))
    admin.query(f"CREATE USER \"{GRAFANA_USER}\" WITH PASSWORD '{GRAFANA_PASSWORD}'")  # read-only, as deployed
    admin.query(f'GRANT READ ON "gaitsym" TO "{GRAFANA_USER}"')
    admin.close()
    config = InfluxConfig(
        url=server.url, username=WORKER_USER, password=WORKER_PASSWORD, retry_for_s=5.0, raw_layout="points"
    )
    store = InfluxStore(config, Quarantine(Path(tmp_path_factory.mktemp("q")) / "quarantine.sqlite"))
    now_us = (time.time_ns() // 1000 // 60_000_000) * 60_000_000
    seeded = Seeded(server, GrafanaInflux(server.url, "gaitsym", GRAFANA_USER, GRAFANA_PASSWORD), now_us)
    home, asym, withheld = analysed("home"), analysed("asymmetric"), analysed("withheld")
    plan: dict[str, list[tuple[int, str, bool]]] = {
        "p-steady": [(d, "home", False) for d in range(1, 56, 2)],
        "p-asym": [(d, "asymmetric", False) for d in range(1, 15)] + [(d, "home", False) for d in range(15, 29)],
        "p-withheld": [(2, "withheld", False)] + [(d, "home", False) for d in range(4, 21, 4)],
        "p-lapsed": [(d, "home", False) for d in range(10, 41, 3)],
        "p-old": [(d, "asymmetric", True) for d in range(1, 11, 3)],
    }
    plan["p-steady"] = [(9, "withheld", False) if d == 9 else (d, k, o) for d, k, o in plan["p-steady"]]
    docs = {"home": home.doc, "asymmetric": asym.doc, "withheld": withheld.doc}
    gap = gap_record("p-steady", "s-p-steady-01", "left_thigh", 12_000, 12_049)
    for subject, sessions in plan.items():
        written = []
        for day, kind, old in sorted(sessions):
            session = f"s-{subject}-{day:02d}"
            t0_us = now_us - day * DAY_US - 2 * HOUR_US
            doc = docs[kind]
            if session == gap.session:
                doc = with_gap_flag(doc, [f"{gap.placement} seq {gap.seq_first}..{gap.seq_last}"])
            written.append((kind, write_session(store, doc, subject, session, t0_us, old_format=old)))
        seeded.sessions[subject] = written
    latest = seeded.sessions["p-steady"][0][1]
    seeded.raw_session = latest
    # the raw samples of a clinic that switched its raw layout mid-session: one point per sample, then packed parts
    # in batches that start inside 0.1-s periods (as real batches do), which the display series must not weigh twice
    seeded.raw_switch = RAW_SWITCH_SAMPLE
    seeded.raw_samples = write_raw(
        store, home.recording, "p-steady", latest.session, latest.start_us, stop=RAW_SWITCH_SAMPLE
    )
    packed_config = dataclasses.replace(config, raw_layout="packed")
    packed = InfluxStore(packed_config, Quarantine(Path(tmp_path_factory.mktemp("qp")) / "quarantine.sqlite"))
    seeded.raw_samples += write_raw(
        packed, home.recording, "p-steady", latest.session, latest.start_us, batch=997, start=RAW_SWITCH_SAMPLE
    )
    packed.close()
    store.write_gap(gap)
    for exercise, side, sets, reps, at in (
        ("clam", "left", 3, 5, now_us - 60 * DAY_US),
        ("clam", "right", 3, 5, now_us - 60 * DAY_US),
        ("single_leg_bridge", "left", 4, None, now_us - 30 * DAY_US),
        ("lunge", "left", 2, 5, now_us - 30 * DAY_US),
    ):
        store.write_plan(make_plan("p-steady", exercise, side, sets, reps, at))
        seeded.plans[("p-steady", exercise, side)] = sets
    store.write_plan(make_plan("p-steady", "clam", "left", 4, 5, now_us - 20 * DAY_US))
    seeded.plans[("p-steady", "clam", "left")] = 4
    store.write_plan(cleared_plan("p-steady", "lunge", "left", now_us - 10 * DAY_US + HOUR_US))
    seeded.plans[("p-steady", "lunge", "left")] = None
    store.write_plan(make_plan("p-asym", "clam", "right", 2, None, now_us - 5 * DAY_US))
    seeded.plans[("p-asym", "clam", "right")] = 2
    store.close()
    yield seeded
