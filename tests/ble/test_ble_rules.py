"""The BLE transport's pure parts, without a stack: error classification, the retry/backoff rule, the pairing
file, and the sample ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from bleak.exc import BleakDBusError, BleakDeviceNotFoundError, BleakError
from bleak_retry_connector import BleakConnectionError, BleakNotFoundError

from firmware_protocol.errors import BadCrc, MtuTooSmall
from firmware_protocol.packet import ImuPacket, encode_packet
from firmware_protocol.sensor_info import Placement, SensorInfo
from sensor_gateway.ble import PairedSensor, Pairing, PairingError, StreamLedger, load_pairing, save_pairing
from sensor_gateway.ble.errors import (
    AdapterBusy,
    BackoffPolicy,
    ConnectTimeout,
    LinkLost,
    MtuRefused,
    NotPaired,
    SensorInfoInvalid,
    SensorNotFound,
    SensorSilent,
    WrongSensor,
    classify,
    retry_delay_s,
)
from sensor_gateway.errors import GatewayError
from sensor_gateway.transport.base import LinkEvent, PacketEvent, SensorRejected, SensorUnavailable, is_retryable


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (BleakDBusError("org.bluez.Error.InProgress", ["Operation already in progress"]), AdapterBusy),
        (BleakDBusError("org.bluez.Error.NotReady", []), AdapterBusy),
        (BleakDBusError("org.bluez.Error.Failed", ["le-connection-abort-by-local"]), LinkLost),
        (BleakDBusError("org.freedesktop.DBus.Error.UnknownObject", []), SensorNotFound),
        (BleakDeviceNotFoundError("AA:BB", "Device with address AA:BB was not found"), SensorNotFound),
        (BleakNotFoundError("gone"), SensorNotFound),
        (BleakConnectionError("failed"), LinkLost),
        (BleakError("Not connected"), LinkLost),
        (TimeoutError(), ConnectTimeout),
        (MtuTooSmall("mtu", "negotiated ATT MTU is 23 bytes; the sensor needs at least 29 bytes"), MtuRefused),
        (BadCrc("crc16", "x"), SensorInfoInvalid),
    ],
)
def test_classify_maps_bleak_errors_to_typed_transport_errors(exc: BaseException, expected: type) -> None:
    err = classify(exc)
    assert isinstance(err, expected) and isinstance(err, GatewayError)


def test_classify_keeps_the_mtu_numbers_in_the_message() -> None:
    err = classify(MtuTooSmall("mtu", "negotiated ATT MTU is 23 bytes; the sensor needs at least 29 bytes"))
    assert "23 bytes" in str(err) and "29 bytes" in str(err)


def test_retry_rule_refusals_are_dropped_and_transient_errors_back_off_by_class() -> None:
    policy = BackoffPolicy()
    for refused in (MtuRefused("m"), WrongSensor("w"), SensorInfoInvalid("s"), NotPaired("n"), PairingError("p")):
        assert isinstance(refused, SensorRejected) and not is_retryable(refused)
        assert retry_delay_s(refused, 1, policy) is None
    assert retry_delay_s(SensorSilent("s"), 1) == 0.0  # reconnect a silent link at once
    assert [retry_delay_s(AdapterBusy("b"), n) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [retry_delay_s(LinkLost("l"), n) for n in (1, 2, 5, 10)] == [0.5, 1.0, 8.0, 10.0]
    assert [retry_delay_s(SensorNotFound("n"), n) for n in (1, 3, 6, 100)] == [1.0, 4.0, 30.0, 30.0]
    assert retry_delay_s(ConnectTimeout("t"), 2) == 1.0
    for transient in (AdapterBusy("b"), LinkLost("l"), SensorNotFound("n"), SensorSilent("s")):
        assert isinstance(transient, SensorUnavailable) and is_retryable(transient)


def test_pairing_file_round_trips_and_a_missing_one_says_how_to_pair(tmp_path: Path) -> None:
    with pytest.raises(NotPaired, match="gaitsym gateway pair"):
        load_pairing(tmp_path / "ble_pairing.json")
    pairing = Pairing("hci1", {"pelvis": PairedSensor("pelvis", "00:AA:00:00:00:01", "GS1-PLV-0001")}, 1.5)
    save_pairing(tmp_path / "ble_pairing.json", pairing)
    assert load_pairing(tmp_path / "ble_pairing.json") == pairing
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(PairingError, match="format"):
        load_pairing(tmp_path / "bad.json")


def _packet(seq: int, n: int = 2) -> bytes:
    return encode_packet(
        ImuPacket(
            sequence=seq,
            timestamp_us=(seq * 10_000) % 2**32,
            acc_range_g=8,
            gyr_range_dps=1000,
            samples=((1,) * 6,) * n,
        )
    )


def _info(boot_epoch: int) -> SensorInfo:
    return SensorInfo(
        placement=Placement.PELVIS,
        sample_rate_hz=100,
        acc_range_g=8,
        gyr_range_dps=1000,
        samples_per_packet=2,
        firmware_version=(1, 0, 0),
        boot_epoch=boot_epoch,
        serial="S-1",
    )


def test_ledger_accounts_every_sample_as_delivered_or_gap_across_wrap_and_reboot() -> None:
    info = _info(boot_epoch=7)
    ledger = StreamLedger()
    ledger.feed(LinkEvent("pelvis", "connected", info))
    start = 2**32 - 4
    for seq in (start, start + 2, start + 6, start + 8):  # start + 4 lost; wraps through 0
        ledger.feed(PacketEvent("pelvis", 0.0, _packet(seq % 2**32)))
    ledger.feed(PacketEvent("pelvis", 0.0, _packet((start + 6) % 2**32)))  # duplicate
    ledger.feed(PacketEvent("pelvis", 0.0, b"\x01\x00"))  # malformed
    [gap] = ledger.gaps
    assert (gap.seq_first_missing, gap.seq_last_missing, gap.samples, gap.duration_s) == (
        start + 4,
        start + 5,
        2,
        0.02,
    )
    led = ledger.ledger("pelvis")
    assert (led.delivered, led.duplicates, led.lost) == (8, 1, 2)
    assert ledger.malformed == {"pelvis": {"TruncatedPacket": 1}}
    rebooted = _info(boot_epoch=8)
    ledger.feed(LinkEvent("pelvis", "connected", rebooted))
    ledger.feed(PacketEvent("pelvis", 0.0, _packet(0)))
    assert ledger.ledger("pelvis").first_seq == 0 and ledger.ledger("pelvis").delivered == 2
    assert len(ledger.ledgers) == 2
