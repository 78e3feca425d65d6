"""gaitsym's sensor wire format: the contract between the IMU sensor firmware and the home gateway.

SPEC.md in this folder is the normative description (byte tables, CRC, wrap rules, MTU rules, control
protocol, GATT profile); vectors/*.json are its golden examples. Modules, one per message kind:

- `packet`: IMU data packet v1 (notification), `encode_packet` / `decode_packet`
- `sensor_info`: the 30-byte sensor info (read), `Placement`
- `control`: commands (write) and replies (notify)
- `gatt`: UUIDs, characteristic properties, advertised name
- `wire`: CRC-16/CCITT-FALSE, the ranges byte, wrap-safe u32 arithmetic (`unwrap_u32`, `seq_distance`)
- `errors`: `ProtocolError` and its subclasses, `is_retryable`

Importing this package does not import numpy (only `ImuPacket.to_physical` does).
"""

from .control import (
    Command,
    ControlReply,
    Opcode,
    Reply,
    SetPlacement,
    SetSampleRate,
    SetSamplesPerPacket,
    StartStreaming,
    Status,
    StopStreaming,
    TimeSyncReply,
    TimeSyncRequest,
    UnsupportedOpcodeReply,
    check_reply,
    decode_control,
    decode_reply,
    encode_control,
    encode_reply,
    reply_for_invalid_command,
)
from .errors import (
    BadCrc,
    BadLength,
    CommandRejected,
    InvalidField,
    MtuTooSmall,
    ProtocolError,
    TruncatedPacket,
    UnsupportedVersion,
    is_retryable,
)
from .packet import (
    MAX_SAMPLES_PER_PACKET,
    MIN_MTU,
    ImuPacket,
    PacketFlags,
    decode_packet,
    encode_packet,
    max_samples_for_mtu,
    packet_length,
    samples_per_packet_for_mtu,
)
from .sensor_info import Placement, SensorInfo, decode_sensor_info, encode_sensor_info
from .wire import PROTOCOL_VERSION, crc16_ccitt_false, seq_distance, unwrap_u32

__all__ = [
    "MAX_SAMPLES_PER_PACKET",
    "MIN_MTU",
    "PROTOCOL_VERSION",
    "BadCrc",
    "BadLength",
    "Command",
    "CommandRejected",
    "ControlReply",
    "ImuPacket",
    "InvalidField",
    "MtuTooSmall",
    "Opcode",
    "PacketFlags",
    "Placement",
    "ProtocolError",
    "Reply",
    "SensorInfo",
    "SetPlacement",
    "SetSampleRate",
    "SetSamplesPerPacket",
    "StartStreaming",
    "Status",
    "StopStreaming",
    "TimeSyncReply",
    "TimeSyncRequest",
    "TruncatedPacket",
    "UnsupportedOpcodeReply",
    "UnsupportedVersion",
    "check_reply",
    "crc16_ccitt_false",
    "decode_control",
    "decode_packet",
    "decode_reply",
    "decode_sensor_info",
    "encode_control",
    "encode_packet",
    "encode_reply",
    "encode_sensor_info",
    "is_retryable",
    "max_samples_for_mtu",
    "packet_length",
    "reply_for_invalid_command",
    "samples_per_packet_for_mtu",
    "seq_distance",
    "unwrap_u32",
]
