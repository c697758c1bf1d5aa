"""The sidecar wire protocol (bridge/PROTOCOL.md, version 1.0) as pydantic models.

A ZeroMQ message is ``[header, *payloads]``: ``header`` is a msgpack map with a ``type`` tag,
payloads are raw bytes (PCM, image files, pixels). ``encode`` and ``decode_*`` are an inverse
pair: ``decode_client(encode(msg, payloads)) == (msg, payloads)``.
"""
from __future__ import annotations

import functools
from typing import Annotated, Any, ClassVar, Literal, Union

import msgpack
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from ..core.audio.decode import SampleFormat
from ..core.errors import NpcfaceError

PROTOCOL_VERSION = "1.2"  # 1.1: open.idle, tick/frame idle (section 7.4); 1.2: open/opened.motion (7.5)
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = int(PROTOCOL_VERSION.split(".")[1])

RequestId = Annotated[str, StringConstraints(max_length=64)]
SessionName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Output = Literal["latents", "frames"]
Channel = Literal["arkit", "visemes", "vrm"]
FrameFormat = Literal["rgba8", "rgb8", "jpeg"]


class ProtocolError(NpcfaceError):
    """A request the server answers with an ``error`` message (PROTOCOL.md section 6)."""

    def __init__(self, code: str, message: str, **details: Any):
        super().__init__(message)
        self.code = code
        self.details = details


class BadHeader(ProtocolError):
    """``bad_message``, with what could be read of the header (a valid ``id`` is still echoed)."""

    def __init__(self, message: str, readable: dict[str, Any] | None = None):
        super().__init__("bad_message", message)
        self.readable = readable or {}


# ---------------------------------------------------------------- client -> server


class ClientMessage(BaseModel):
    """Base of client requests: strict types, unknown fields rejected (typos must not pass)."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)
    payload_count: ClassVar[int] = 0
    since: ClassVar[dict[str, int]] = {}  # field -> the protocol minor that added it
    id: RequestId | None = None


class SessionMessage(ClientMessage):
    session: SessionName


class Hello(ClientMessage):
    type: Literal["hello"] = "hello"
    protocol: Annotated[str, StringConstraints(max_length=16)]
    client: Annotated[str, StringConstraints(max_length=128)] = ""


class UploadAvatar(ClientMessage):
    """Payload: the image file's bytes."""

    type: Literal["upload_avatar"] = "upload_avatar"
    payload_count: ClassVar[int] = 1
    face_index: Annotated[int, Field(ge=0, le=64)] | None = None


class Open(SessionMessage):
    type: Literal["open"] = "open"
    since: ClassVar[dict[str, int]] = {"idle": 1, "motion": 2}
    outputs: Annotated[list[Output], Field(min_length=1, max_length=2)] = ["latents"]
    channels: Annotated[list[Channel], Field(max_length=3)] = ["arkit"]
    fps: Annotated[float, Field(ge=1.0, le=120.0)] = 30.0
    avatar: Annotated[str, StringConstraints(max_length=128)] | None = None
    frame_size: Annotated[list[Annotated[int, Field(ge=64, le=1024)]], Field(min_length=2, max_length=2)] = [512, 512]
    frame_format: FrameFormat = "rgba8"
    jpeg_quality: Annotated[int, Field(ge=1, le=100)] = 85
    frame_window: Annotated[int, Field(ge=1, le=64)] = 4
    frame_policy: Literal["latest", "every"] = "latest"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    language: Annotated[str, StringConstraints(min_length=2, max_length=32)] = "en-us"
    motion_amplitude: Annotated[float, Field(ge=0.0, le=3.0)] = 1.0
    head_distance: Annotated[float, Field(ge=0.25, le=4.0)] = 1.0
    lookahead_s: Annotated[float, Field(ge=0.0, le=1.0)] = 0.12
    idle: bool = False  # 1.1: real-time idle ticks between lines (section 7.4)
    motion: Literal["rules", "learned"] | None = None  # 1.2: the motion generator; None: the server's default


class AudioChunk(SessionMessage):
    """Payload: interleaved PCM in ``format``."""

    type: Literal["audio"] = "audio"
    payload_count: ClassVar[int] = 1
    seq: Annotated[int, Field(ge=0, le=2**31)]
    rate: Annotated[int, Field(ge=8000, le=192000)]
    channels: Literal[1, 2] = 1
    format: SampleFormat = "s16le"
    text: str | None = None  # length checked against the server's limit, not here


class EndLine(SessionMessage):
    type: Literal["end_line"] = "end_line"


class SetEmotion(SessionMessage):
    type: Literal["emotion"] = "emotion"
    time: Annotated[float, Field(ge=0.0)] | None = None
    emotion: Annotated[str, StringConstraints(max_length=32)]
    intensity: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    ramp: Annotated[float, Field(ge=0.0, le=10.0)] = 0.3


class SetGaze(SessionMessage):
    type: Literal["gaze"] = "gaze"
    time: Annotated[float, Field(ge=0.0)] | None = None
    yaw: Annotated[float, Field(ge=-60.0, le=60.0)]
    pitch: Annotated[float, Field(ge=-60.0, le=60.0)]


class SetControls(SessionMessage):
    type: Literal["controls"] = "controls"
    time: Annotated[float, Field(ge=0.0)] | None = None
    motion_amplitude: Annotated[float, Field(ge=0.0, le=3.0)] | None = None
    head_distance: Annotated[float, Field(ge=0.25, le=4.0)] | None = None


class FrameAck(SessionMessage):
    type: Literal["frame_ack"] = "frame_ack"
    count: Annotated[int, Field(ge=1, le=64)] = 1


class Close(SessionMessage):
    type: Literal["close"] = "close"


class Ping(ClientMessage):
    type: Literal["ping"] = "ping"


class StatsRequest(ClientMessage):
    type: Literal["stats"] = "stats"


CLIENT_MESSAGES = (Hello, UploadAvatar, Open, AudioChunk, EndLine, SetEmotion, SetGaze, SetControls, FrameAck,
                   Close, Ping, StatsRequest)
ClientRequest = Annotated[Union[CLIENT_MESSAGES], Field(discriminator="type")]
SILENT_REQUESTS = frozenset({"audio", "emotion", "gaze", "controls", "frame_ack"})

# ---------------------------------------------------------------- server -> client


class ServerMessage(BaseModel):
    """Base of server messages: clients ignore fields they do not know (newer minor versions)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    payload_count: ClassVar[int] = 0
    since: ClassVar[dict[str, int]] = {}  # field -> the protocol minor that added it (never sent below it)


class Welcome(ServerMessage):
    type: Literal["welcome"] = "welcome"
    id: str | None = None
    protocol: str
    server: str
    instance: str
    capabilities: dict[str, Any]
    limits: dict[str, Any]
    heartbeat_s: float
    idle_timeout_s: float


class AvatarReply(ServerMessage):
    type: Literal["avatar"] = "avatar"
    id: str | None = None
    avatar: str
    cached: bool
    width: int
    height: int


class Opened(ServerMessage):
    type: Literal["opened"] = "opened"
    since: ClassVar[dict[str, int]] = {"idle": 1, "motion": 2}
    id: str | None = None
    session: str
    outputs: list[str]
    channels: list[str]
    fps: float
    avatar: str | None = None
    frame_size: list[int]
    frame_format: str
    frame_window: int
    frame_policy: str = "latest"
    lookahead_s: float = 0.0
    idle: bool = False  # 1.1: echoes open.idle
    motion: str | None = None  # 1.2 connections only: the motion generator animating the session


class Tick(ServerMessage):
    type: Literal["tick"] = "tick"
    since: ClassVar[dict[str, int]] = {"idle": 1}
    session: str
    line: int | None = None  # absent on idle ticks (1.1)
    index: int
    time: float
    head_rotation: list[float]
    head_translation: list[float]
    gaze_left: list[float]
    gaze_right: list[float]
    arkit: list[float] | None = None
    visemes: list[float] | None = None
    vrm: list[float] | None = None
    idle: bool = False  # 1.1: an idle tick (time and index on the session's idle timeline)


class FrameHeader(ServerMessage):
    """Payload: the pixels (or JPEG file)."""

    type: Literal["frame"] = "frame"
    since: ClassVar[dict[str, int]] = {"idle": 1}
    payload_count: ClassVar[int] = 1
    session: str
    line: int | None = None  # absent on idle frames (1.1)
    index: int
    time: float
    width: int
    height: int
    format: str
    idle: bool = False  # 1.1


class LineEnd(ServerMessage):
    type: Literal["line_end"] = "line_end"
    id: str | None = None
    session: str
    line: int
    ticks: int
    duration: float
    frames_sent: int
    frames_dropped: int


class Closed(ServerMessage):
    type: Literal["closed"] = "closed"
    id: str | None = None
    session: str
    lines: int
    ticks_sent: int
    frames_sent: int
    frames_dropped: int


class Stats(ServerMessage):
    type: Literal["stats"] = "stats"
    id: str | None = None
    instance: str
    uptime_s: float
    clients: int
    sessions: int
    avatars: int
    errors_sent: int
    your_sessions: list[dict[str, Any]]


class Pong(ServerMessage):
    type: Literal["pong"] = "pong"
    id: str | None = None
    instance: str


class ErrorReply(ServerMessage):
    type: Literal["error"] = "error"
    id: str | None = None
    code: str
    message: str
    request: str | None = None
    session: str | None = None
    details: dict[str, Any] = {}


SERVER_MESSAGES = (Welcome, AvatarReply, Opened, Tick, FrameHeader, LineEnd, Closed, Stats, Pong, ErrorReply)
ServerReply = Annotated[Union[SERVER_MESSAGES], Field(discriminator="type")]

_CLIENT_ADAPTER: TypeAdapter = TypeAdapter(ClientRequest)
_SERVER_ADAPTER: TypeAdapter = TypeAdapter(ServerReply)
_CLIENT_TYPES = {m.model_fields["type"].default: m for m in CLIENT_MESSAGES}
_SERVER_TYPES = {m.model_fields["type"].default: m for m in SERVER_MESSAGES}

# ---------------------------------------------------------------- encoding


def encode(message: BaseModel, payloads: tuple[bytes, ...] | list[bytes] = (),
           minor: int = PROTOCOL_MINOR) -> list[bytes]:
    """A message as ZeroMQ frames: [msgpack header, *payloads]. Fields without a value are left
    out (absent means nil), and so are fields newer than the connection's protocol ``minor``."""
    expected = type(message).payload_count
    if len(payloads) != expected:
        raise ValueError(f"{message.type} carries {expected} payload(s), got {len(payloads)}")
    newer = {name for name, added in getattr(message, "since", {}).items() if added > minor}
    header = message.model_dump(exclude_none=True, exclude=newer)
    return [msgpack.packb(header, use_bin_type=True), *payloads]


def encode_fields(kind: type[ServerMessage], values: dict[str, Any], minor: int = PROTOCOL_MINOR) -> list[bytes]:
    """``encode(kind(**values), minor=minor)`` without building the model, for values that already
    have their fields' types (the loop's ticks, ~1000 a second): the same bytes, field for field
    in the model's order with its defaults, None and fields newer than ``minor`` left out."""
    header = {}
    for name, default in _header_fields(kind, minor):
        value = values.get(name, default)
        if value is not None:
            header[name] = value
    return [msgpack.packb(header, use_bin_type=True)]


@functools.cache
def _header_fields(kind: type[ServerMessage], minor: int) -> tuple[tuple[str, Any], ...]:
    """(name, default) of ``kind``'s fields that protocol ``minor`` knows, in the model's order."""
    return tuple((name, field.default) for name, field in kind.model_fields.items() if kind.since.get(name, 0) <= minor)


_MSGPACK_NAMES = {int: "integer", float: "float", bool: "bool", type(None): "nil", bytes: "bin", list: "array",
                  dict: "map", str: "string"}


def _msgpack_name(value: Any) -> str:
    return _MSGPACK_NAMES.get(type(value), type(value).__name__)


_CONTAINERS = frozenset({dict, list})
_STRING = frozenset({str})


def unpack_header(raw: bytes) -> dict[str, Any]:
    """The header map of a message, or BadHeader (``bad_message``) saying what is wrong with it."""
    # The common case in C: a flat map with string keys and a string type (audio, acks). Anything
    # else goes through the slow path below, which names what is wrong (or walks nested maps).
    try:
        header = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception:  # (msgpack raises several kinds) the slow path names it
        header = None
    if (type(header) is dict and type(header.get("type")) is str and _STRING.issuperset(map(type, header))
            and _CONTAINERS.isdisjoint(map(type, header.values()))):  # (set operations: no Python loop)
        return header
    return _unpack_header_checked(raw)


def _unpack_header_checked(raw: bytes) -> dict[str, Any]:
    non_string_keys: list[Any] = []

    def string_keyed(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
        non_string_keys.extend(key for key, _ in pairs if not isinstance(key, str))
        return {key: value for key, value in pairs if isinstance(key, str)}

    try:
        header = msgpack.unpackb(raw, raw=False, strict_map_key=False, use_list=True, object_pairs_hook=string_keyed)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise BadHeader(f"the header is not valid msgpack ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise BadHeader(f"the header must be a msgpack map, not {_msgpack_name(header)}")
    if non_string_keys:
        key = non_string_keys[0]
        raise BadHeader(f"the header has a map key that is not a string: {key!r:.40} ({_msgpack_name(key)}); "
                        "map keys must be strings", header)
    if not isinstance(header.get("type"), str):
        raise BadHeader("the header has no string field 'type'", header)
    return header


def is_frame_ack(frames: list[bytes]) -> bool:
    """Whether a message (header and payloads) is a well-formed-looking frame_ack, which the
    server may handle ahead of requests read before it (it only returns credits)."""
    # msgpack strings are their UTF-8 bytes: a header without these bytes has no such type
    if len(frames) != 1 or len(frames[0]) > 256 or b"frame_ack" not in frames[0]:
        return False
    try:
        header = msgpack.unpackb(frames[0], raw=False, strict_map_key=False)
    except Exception:  # any undecodable header is for the normal path to name
        return False
    return isinstance(header, dict) and header.get("type") == "frame_ack"


def request_context(header: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(id, type, session) of a possibly invalid request, for naming it in an error reply."""

    def short_str(value: Any) -> str | None:
        return value if isinstance(value, str) and len(value) <= 64 else None

    return short_str(header.get("id")), short_str(header.get("type")), short_str(header.get("session"))


def _validation_messages(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors()[:8]:
        # The first loc element is the union tag; skip it so the user sees their field name.
        where = ".".join(str(p) for p in err["loc"][1:]) or "message"
        lines.append(f"{where}: {err['msg']}")
    return lines


def parse_request(header: dict[str, Any], payloads: list[bytes]) -> ClientMessage:
    kind = header["type"]
    model = _CLIENT_TYPES.get(kind)
    if model is None:
        raise ProtocolError("bad_request", f"unknown message type {kind!r}", errors=[f"type: unknown {kind!r}"])
    if len(payloads) != model.payload_count:
        problem = f"'{kind}' carries {model.payload_count} payload frame(s), got {len(payloads)}"
        raise ProtocolError("bad_request", problem, errors=[f"payloads: {problem}"])
    try:  # the model's own validator (the union's picks it by "type" first); errors from the union's
        return model.__pydantic_validator__.validate_python(header)
    except ValidationError:
        pass
    try:  # whose messages name the fields as clients know them (tests/test_protocol_fast.py)
        return _CLIENT_ADAPTER.validate_python(header)
    except ValidationError as exc:
        problems = _validation_messages(exc)
        raise ProtocolError("bad_request", f"invalid '{kind}': " + "; ".join(problems), errors=problems) from None


def check_version(message: ClientMessage, minor: int) -> None:
    """bad_request for fields newer than the connection's protocol minor (section 10): a client
    that said hello with 1.0 cannot ask for 1.1's idle ticks, whose messages it would not know."""
    newer = [f"{name}: added in protocol 1.{added}, this connection speaks 1.{minor} (say hello with "
             f"\"1.{added}\" or later to use it)"
             for name, added in message.since.items() if added > minor and getattr(message, name) is not None
             and name in message.model_fields_set]
    if newer:
        raise ProtocolError("bad_request", f"invalid '{message.type}': " + "; ".join(newer), errors=newer)


def decode_client(frames: list[bytes]) -> tuple[ClientMessage, list[bytes]]:
    """Server side: the request and its payloads, or ProtocolError naming what is wrong."""
    if not frames:
        raise ProtocolError("bad_message", "empty message")
    header = unpack_header(frames[0])
    return parse_request(header, list(frames[1:])), list(frames[1:])


def decode_server(frames: list[bytes]) -> tuple[ServerMessage | None, list[bytes]]:
    """Client side: the server message and its payloads; None for a type this client does not know."""
    header = unpack_header(frames[0])
    if header["type"] not in _SERVER_TYPES:
        return None, list(frames[1:])
    try:
        return _SERVER_ADAPTER.validate_python(header), list(frames[1:])
    except ValidationError as exc:
        raise ProtocolError("bad_message", "invalid server message: " + "; ".join(_validation_messages(exc))) from None


def error_reply(exc: ProtocolError | NpcfaceError, request_id: str | None = None, request: str | None = None,
                session: str | None = None) -> ErrorReply:
    details = dict(getattr(exc, "details", {}) or {})
    return ErrorReply(id=request_id, code=exc.code, message=str(exc), request=request, session=session,
                      details=details)
