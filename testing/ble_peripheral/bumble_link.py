"""The Bumble link and controllers of the Bumble kit (`bumble_kit.py`): every emulated sensor has its own
controller on one `KitLink`, and so has the host's kernel, through ``/dev/vhci``.

Three Bumble 0.0.236 limitations are handled here without patching Bumble (found running the real BlueZ in
the BLE VM test, tests/ble_vm):
- `KitLink.send_acl_data` stamps LE ACL data with the sending connection's own address (Bumble's `LocalLink`
  uses the controller's current random address, which the kernel may have set to something else before it
  connected with its public address, so the peer found no connection for the data);
- every controller (`KitController`) advertises `LEGACY_LE_FEATURES` (no extended advertising, no LL privacy):
  with those features the kernel waits for an LE Enhanced Connection Complete event Bumble's controller never
  sends;
- Bumble's link controller answers an active scan with the advertising data again instead
  of the scan response data, so the advertised name (which does not fit the advertising data next to the
  128-bit service UUID) never arrived; `KitController` reports the advertiser's scan response data.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bumble import hci
from bumble.controller import Controller
from bumble.core import PhysicalTransport
from bumble.link import LocalLink

__all__ = ["LEGACY_LE_FEATURES", "KitController", "KitLink", "legacy_controller"]

LEGACY_LE_FEATURES = (
    hci.LeFeatureMask.LE_ENCRYPTION
    | hci.LeFeatureMask.CONNECTION_PARAMETERS_REQUEST_PROCEDURE
    | hci.LeFeatureMask.EXTENDED_REJECT_INDICATION
    | hci.LeFeatureMask.PERIPHERAL_INITIATED_FEATURE_EXCHANGE
    | hci.LeFeatureMask.LE_PING
    | hci.LeFeatureMask.LE_DATA_PACKET_LENGTH_EXTENSION
)
"""A Bluetooth 4.2-style LE feature set: the kernel then uses legacy connection-complete events."""


class KitLink(LocalLink):
    """Bumble's in-process link, stamping LE ACL data with the sending connection's own address."""

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: PhysicalTransport,
        data: bytes,
    ) -> None:
        if transport == PhysicalTransport.LE:
            connection = sender_controller.le_connections.get(destination_address)
            destination = self.find_le_controller(destination_address)
            if connection is not None and destination is not None:
                source_address = connection.self_address
                asyncio.get_running_loop().call_soon(destination.on_link_acl_data, source_address, transport, data)
                return
        super().send_acl_data(sender_controller, destination_address, transport, data)


class KitController(Controller):
    """A Bumble controller advertising `LEGACY_LE_FEATURES` whose scan responses carry the advertiser's
    scan response data (Bumble's link controller reports the advertising data a second time instead)."""

    def __init__(self, name: str, link: LocalLink, **kwargs: Any) -> None:
        super().__init__(name, link=link, **kwargs)
        self.le_features = LEGACY_LE_FEATURES

    def _scan_response_of(self, address: hci.Address) -> bytes | None:
        for c in self.link.controllers:
            advertiser = c.le_legacy_advertiser
            if c is not self and advertiser.enabled and advertiser.address == address:
                return bytes(advertiser.scan_response_data)
        return None

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        # Bumble's version formats every packet for a debug log even when it is off: half the kit's CPU at
        # 100 notifications/s per sensor, which under software emulation made the kernel's 2 s HCI command
        # timeout fire.
        if isinstance(packet, hci.HCI_Command):
            self.on_hci_command_packet(packet)
        elif isinstance(packet, hci.HCI_AclDataPacket):
            self.on_hci_acl_data_packet(packet)
        else:
            super().on_hci_packet(packet)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if isinstance(packet, hci.HCI_LE_Advertising_Report_Event):
            reports = []
            for r in packet.reports:
                data = r.data
                if r.event_type == hci.HCI_LE_Advertising_Report_Event.EventType.SCAN_RSP:
                    scan_response = self._scan_response_of(r.address)
                    data = r.data if scan_response is None else scan_response
                reports.append(
                    hci.HCI_LE_Advertising_Report_Event.Report(
                        event_type=r.event_type, address_type=r.address_type, address=r.address, data=data, rssi=r.rssi
                    )
                )
            packet = hci.HCI_LE_Advertising_Report_Event(reports)
        if self.host:  # Bumble's send_hci_packet minus the eagerly formatted debug log
            asyncio.get_running_loop().call_soon(self.host.on_packet, bytes(packet))


def legacy_controller(name: str, link: LocalLink, **kwargs: Any) -> Controller:
    """A `KitController` on `link`."""
    return KitController(name, link, **kwargs)
