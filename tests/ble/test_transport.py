"""The gateway's BLE transport (`sensor_gateway.ble`) with the real bleak against the emulated kit on bluezoo.

Each test pairs the kit into a temp state dir, starts a `BleTransport` for the three placements under a
`GatewayStandIn` (drains events into a `StreamLedger`, starts streaming on every "connected", as the gateway
core does) and drives faults through the kit's controls. Accounting is checked against the kit's own counter
(`sequence`: samples taken since boot), so every sample is either delivered or in a recorded gap.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from firmware_protocol.sensor_info import Placement
from gaitsym_common.uplink.vocabulary import PLACEMENTS
from sensor_gateway.ble import BleConfig, PairingError, make_ble_transport, pair
from sensor_gateway.ble.config import PAIRING_FILE
from testing.ble_harness import BleStack
from testing.ble_harness.standin import GatewayStandIn, kit_call

pytestmark = pytest.mark.timeout(120)

SERIALS = {"pelvis": "GS1-PLV-0001", "left_thigh": "GS1-LTH-0002", "right_thigh": "GS1-RTH-0003"}
BOOT_EPOCHS = {"pelvis": 17, "left_thigh": 5, "right_thigh": 42}


def _all_streaming(gw: GatewayStandIn, placements: tuple[str, ...] = PLACEMENTS) -> bool:
    return all(gw.streaming(p) for p in placements)


def _assert_every_sample_accounted(gw: GatewayStandIn, stack: BleStack, placement: str) -> int:
    """After streaming stopped: delivered + gap samples == samples the sensor took in this boot. Returns
    the number of gap samples."""
    state = kit_call(stack, "state", placement)
    ledger = gw.ledger.ledger(placement)
    assert (ledger.info.serial, ledger.info.boot_epoch) == (state["serial"], state["boot_epoch"])
    gap_samples = sum(g.samples for g in gw.ledger.gaps_of(placement) if g.boot_epoch == state["boot_epoch"])
    assert ledger.first_seq == 0, ledger
    assert ledger.next_seq == state["sequence"], (ledger, state)
    assert ledger.delivered + gap_samples == state["sequence"], (ledger, gap_samples, state)
    assert ledger.lost == gap_samples
    return gap_samples


def test_pairing_pins_the_three_sensors_by_placement(ble_stack: BleStack, ble_config: BleConfig) -> None:
    pairing = asyncio.run(pair(ble_config, scan_s=1.0))
    assert {p: s.serial for p, s in pairing.sensors.items()} == SERIALS
    assert {p: s.address for p, s in pairing.sensors.items()} == ble_stack.sensor_addresses
    saved = json.loads((ble_config.state_dir / PAIRING_FILE).read_text())
    assert saved["adapter"] == "hci0"
    assert {p: s["serial"] for p, s in saved["sensors"].items()} == SERIALS
    assert {p: s["address"] for p, s in saved["sensors"].items()} == ble_stack.sensor_addresses


def test_pairing_refuses_two_sensors_claiming_one_placement(ble_stack: BleStack, ble_config: BleConfig) -> None:
    kit_call(ble_stack, "power_on", "neighbour")
    with pytest.raises(PairingError, match=r"2 sensors claim pelvis: GS1-PLV-0001 .*GS1-PLV-0904"):
        asyncio.run(pair(ble_config, scan_s=1.0))
    assert not (ble_config.state_dir / PAIRING_FILE).exists()


def test_connects_the_pinned_kit_only_never_a_neighbour(
    ble_stack: BleStack, ble_config: BleConfig, paired: object
) -> None:
    """Paired kit's pelvis off and a neighbour's pelvis on: the gateway connects left and right only, keeps
    trying its own pelvis, and takes it as soon as it is back."""
    kit_call(ble_stack, "power_off", "pelvis")
    kit_call(ble_stack, "power_on", "neighbour")
    gw = GatewayStandIn(make_ble_transport(ble_config))
    gw.open(PLACEMENTS)
    try:
        assert gw.wait_until(lambda: _all_streaming(gw, ("left_thigh", "right_thigh")), 15.0)
        gw.run_for(4.0)  # > one scan timeout: the pelvis link looked for its pinned address and found nothing
        assert "connected" not in gw.ledger.states("pelvis")
        neighbour = kit_call(ble_stack, "state", "neighbour")
        assert neighbour["powered"] and not neighbour["imu_notifying"] and neighbour["control_replies"] == 0
        assert gw.transport.stats()["pelvis"].errors.get("SensorNotFound", 0) >= 1
        kit_call(ble_stack, "power_on", "pelvis")
        assert gw.wait_until(lambda: gw.streaming("pelvis"), 40.0), gw.transport.stats()["pelvis"]
        assert gw.ledger.ledger("pelvis").info.serial == SERIALS["pelvis"]
        assert kit_call(ble_stack, "state", "neighbour")["control_replies"] == 0
    finally:
        gw.transport.close()


def test_three_sensors_stream_and_every_sample_arrives(ble_stack: BleStack, gateway: GatewayStandIn) -> None:
    """All three connected one after another; 15 s at 100 Hz, batch size adapted to the 247-byte MTU (19
    samples per packet); after stopping, each sensor's every sample was delivered, none missing."""
    assert gateway.wait_until(lambda: _all_streaming(gateway), 20.0)
    gateway.run_for(15.0)
    gateway.stop_all(PLACEMENTS)
    for placement in PLACEMENTS:
        ledger = gateway.ledger.ledger(placement)
        assert ledger.info.serial == SERIALS[placement]
        assert ledger.info.placement == Placement(placement)
        assert ledger.info.samples_per_packet == 19
        assert _assert_every_sample_accounted(gateway, ble_stack, placement) == 0
        assert ledger.delivered >= 1400, ledger
        assert gateway.transport.stats()[placement].mtu == 247
    assert not gateway.ledger.gaps and not gateway.ledger.malformed


def test_sensor_that_drops_out_and_returns_resumes_with_the_gap_recorded(
    ble_stack: BleStack, gateway: GatewayStandIn
) -> None:
    """Radio fades (0.5 s of samples never arrive), then the link drops: the transport reconnects on its own,
    streaming resumes in the same boot, and the missing samples are one recorded gap."""
    assert gateway.wait_until(lambda: _all_streaming(gateway), 20.0)
    gateway.run_for(1.0)
    kit_call(ble_stack, "set_silent", "left_thigh", True)
    gateway.run_for(0.5)
    assert kit_call(ble_stack, "drop_link", "left_thigh") == 1
    kit_call(ble_stack, "set_silent", "left_thigh", False)
    before = gateway.ledger.ledger("left_thigh").delivered
    assert gateway.wait_until(lambda: gateway.ledger.ledger("left_thigh").delivered > before + 100, 15.0)
    gateway.stop_all(PLACEMENTS)
    assert gateway.ledger.states("left_thigh")[-3:] == ["lost", "connecting", "connected"]
    [gap] = gateway.ledger.gaps_of("left_thigh")
    assert (gap.serial, gap.boot_epoch) == (SERIALS["left_thigh"], BOOT_EPOCHS["left_thigh"])
    # whole packets of 19 samples sent while silent (0.5 s, give or take the control calls' latency)
    assert gap.samples % 19 == 0 and 19 <= gap.samples <= 95, gap
    assert gap.duration_s == pytest.approx(gap.samples / 100)
    assert _assert_every_sample_accounted(gateway, ble_stack, "left_thigh") == gap.samples
    for placement in ("pelvis", "right_thigh"):
        assert _assert_every_sample_accounted(gateway, ble_stack, placement) == 0
    stats = gateway.transport.stats()["left_thigh"]
    assert (stats.connects, stats.losses, stats.silent_losses) == (2, 1, 0)


def test_silent_link_is_caught_by_the_watchdog_and_reconnected(ble_stack: BleStack, gateway: GatewayStandIn) -> None:
    assert gateway.wait_until(lambda: _all_streaming(gateway), 20.0)
    kit_call(ble_stack, "set_silent", "right_thigh", True)
    assert gateway.wait_until(lambda: "lost" in gateway.ledger.states("right_thigh"), 10.0)
    lost = [e for e in gateway.ledger.link_events if e.placement == "right_thigh" and e.state == "lost"]
    assert "silent" in lost[0].reason and "watchdog" in lost[0].reason
    kit_call(ble_stack, "set_silent", "right_thigh", False)
    connects = gateway.ledger.states("right_thigh").count("connected")
    assert gateway.wait_until(lambda: gateway.ledger.states("right_thigh").count("connected") > connects, 15.0)
    before = gateway.ledger.ledger("right_thigh").delivered
    assert gateway.wait_until(lambda: gateway.ledger.ledger("right_thigh").delivered > before + 100, 10.0)
    gateway.stop_all(PLACEMENTS)
    assert gateway.transport.stats()["right_thigh"].silent_losses >= 1
    gap_samples = _assert_every_sample_accounted(gateway, ble_stack, "right_thigh")
    assert gap_samples >= 3 * 19  # whole packets, at least the 1 s watchdog limit of silence at 100 Hz


def test_rebooted_sensor_comes_back_with_a_new_boot_epoch(ble_stack: BleStack, gateway: GatewayStandIn) -> None:
    assert gateway.wait_until(lambda: _all_streaming(gateway), 20.0)
    gateway.run_for(0.5)
    kit_call(ble_stack, "reboot", "pelvis")
    new_boot = BOOT_EPOCHS["pelvis"] + 1
    assert gateway.wait_until(
        lambda: gateway.ledger.current["pelvis"][1] == new_boot and gateway.streaming("pelvis", 5), 20.0
    )
    gateway.stop_all(PLACEMENTS)
    connected = [e for e in gateway.ledger.link_events if e.placement == "pelvis" and e.state == "connected"]
    assert [e.info.boot_epoch for e in connected if e.info] == [BOOT_EPOCHS["pelvis"], new_boot]
    old = gateway.ledger.ledgers[(SERIALS["pelvis"], BOOT_EPOCHS["pelvis"])]
    assert old.delivered > 0
    assert gateway.ledger.ledger("pelvis").first_seq == 0  # sequence restarted with the new boot
    assert _assert_every_sample_accounted(gateway, ble_stack, "pelvis") == 0


def test_malformed_notifications_are_rejected_counted_and_the_stream_goes_on(
    ble_stack: BleStack, gateway: GatewayStandIn
) -> None:
    assert gateway.wait_until(lambda: _all_streaming(gateway), 20.0)
    for kind in ("bad_crc", "truncated", "unsupported_version", "bad_length"):
        kit_call(ble_stack, "send_malformed", "left_thigh", kind, 1)
        gateway.run_for(0.5)
    gateway.run_for(0.5)
    gateway.stop_all(PLACEMENTS)
    assert gateway.ledger.malformed == {
        "left_thigh": {"BadCrc": 1, "TruncatedPacket": 1, "UnsupportedVersion": 1, "BadLength": 1}
    }
    gaps = gateway.ledger.gaps_of("left_thigh")
    assert [g.samples for g in gaps] == [19, 19, 19, 19]  # each rejected packet's samples, as a gap
    assert _assert_every_sample_accounted(gateway, ble_stack, "left_thigh") == 4 * 19
    assert gateway.transport.stats()["left_thigh"].losses == 0


def test_small_mtu_gets_smaller_batches_and_too_small_is_refused(
    ble_stack: BleStack, ble_config: BleConfig, paired: object
) -> None:
    kit_call(ble_stack, "set_mtu", "pelvis", 65)  # fits 4 samples
    kit_call(ble_stack, "set_mtu", "left_thigh", 29)  # the smallest usable: 1 sample
    kit_call(ble_stack, "set_mtu", "right_thigh", 23)  # BLE default, unusable
    gw = GatewayStandIn(make_ble_transport(ble_config))
    gw.open(PLACEMENTS)
    try:
        assert gw.wait_until(
            lambda: (
                _all_streaming(
                    gw,
                    ("pelvis", "left_thigh"),
                )
                and "lost" in gw.ledger.states("right_thigh")
            ),
            20.0,
        )
        gw.run_for(2.0)
        gw.stop_all(PLACEMENTS)
        assert gw.ledger.ledger("pelvis").info.samples_per_packet == 4
        assert gw.ledger.ledger("pelvis").max_packet_bytes == 14 + 12 * 4 == 65 - 3
        assert gw.ledger.ledger("left_thigh").info.samples_per_packet == 1
        assert gw.ledger.ledger("left_thigh").max_packet_bytes == 26
        for placement in ("pelvis", "left_thigh"):
            assert _assert_every_sample_accounted(gw, ble_stack, placement) == 0
            assert kit_call(ble_stack, "state", placement)["truncated"] == 0
        [refusal] = [e for e in gw.ledger.link_events if e.placement == "right_thigh" and e.state == "lost"]
        assert "refused" in refusal.reason and "23 bytes" in refusal.reason and "29 bytes" in refusal.reason
        assert "connected" not in gw.ledger.states("right_thigh")
        stats = gw.transport.stats()["right_thigh"]
        assert (stats.attempts, stats.errors) == (1, {"MtuRefused": 1})  # not retried on its own
        assert kit_call(ble_stack, "state", "right_thigh")["streaming"] is False
    finally:
        gw.transport.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_three_sensors_stream_60_s_and_every_sample_arrives(ble_stack: BleStack, gateway: GatewayStandIn) -> None:
    assert gateway.wait_until(lambda: _all_streaming(gateway), 20.0)
    gateway.run_for(60.0)
    gateway.stop_all(PLACEMENTS)
    for placement in PLACEMENTS:
        assert _assert_every_sample_accounted(gateway, ble_stack, placement) == 0
        assert gateway.ledger.ledger(placement).delivered >= 5900
    assert not gateway.ledger.gaps and not gateway.ledger.malformed and not gateway.events.dropped


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_minute_soak_with_a_link_dropped_every_20_s(ble_stack: BleStack, gateway: GatewayStandIn) -> None:
    """The short version of bench/ble_soak.py: six drops in turn; every sample delivered or in a gap."""
    assert gateway.wait_until(lambda: _all_streaming(gateway), 20.0)
    for i in range(6):
        gateway.run_for(20.0)
        assert kit_call(ble_stack, "drop_link", PLACEMENTS[i % 3]) == 1
    assert gateway.wait_until(lambda: all(gateway.transport.connected(p) for p in PLACEMENTS), 20.0)
    gateway.run_for(3.0)
    gateway.stop_all(PLACEMENTS)
    for placement in PLACEMENTS:
        _assert_every_sample_accounted(gateway, ble_stack, placement)
        assert gateway.transport.stats()[placement].losses == 2
        assert gateway.ledger.states(placement).count("connected") == 3
