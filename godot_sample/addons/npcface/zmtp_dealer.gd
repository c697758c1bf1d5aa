# npcface Godot addon. MIT License, (c) the npcface authors.
#
# A ZeroMQ DEALER speaking ZMTP 3.1 over one StreamPeerTCP, non-blocking: call poll() every frame
# (it never waits) and it returns the whole messages that arrived.
# Implemented: the 64-byte greeting, the NULL mechanism (READY with Socket-Type DEALER, ERROR from
# the peer), short and long frames, the MORE flag (multipart), ZMTP 3.1 PING/PONG (a PING from the
# peer is answered; send_ping() probes the peer). Refused, with a sentence in `error`: a port that
# is not ZeroMQ, a peer asking for PLAIN or CURVE, a peer that is not a ROUTER, ZMTP < 3.0, frames
# over max_frame_bytes. Not implemented: reconnection (make a new dealer: the npcface server treats
# a new connection as a new client anyway), CURVE.
class_name NpcfaceZmtpDealer
extends RefCounted

enum State { IDLE, CONNECTING, GREETING, HANDSHAKE, READY, FAILED, CLOSED }

const FLAG_MORE := 0x01
const FLAG_LONG := 0x02
const FLAG_COMMAND := 0x04
const GREETING_BYTES := 64

## Frames above this size are refused (guards memory against a confused peer).
var max_frame_bytes := 256 * 1024 * 1024
var state := State.IDLE
## Why the connection failed or closed: one sentence, "" while all is well.
var error := ""
## The peer's Socket-Type from its READY ("ROUTER" for npcface serve).
var peer_socket_type := ""
## The peer's ZMTP minor version (1 for 3.1; heartbeats need it).
var peer_minor_version := 0
var pongs_received := 0
var bytes_received := 0

var _tcp := StreamPeerTCP.new()
var _parser := FrameParser.new()
var _greeting := PackedByteArray()
var _deadline_ms := 0
var _where := ""
var _partial: Array[PackedByteArray] = []


## Starts connecting; poll() carries the handshake on. `timeout_s` bounds connect + handshake.
func connect_to(host: String, port: int, timeout_s := 5.0) -> void:
	_where = "%s:%d" % [host, port]
	_parser.max_frame_bytes = max_frame_bytes
	_deadline_ms = Time.get_ticks_msec() + int(timeout_s * 1000.0)
	var status := _tcp.connect_to_host(host, port)
	if status != OK:
		_fail("cannot connect to %s: %s" % [_where, error_string(status)])
		return
	_tcp.set_no_delay(true)  # ticks are small: latency matters more than packet count
	state = State.CONNECTING


func is_ready() -> bool:
	return state == State.READY


func is_open() -> bool:
	return state in [State.CONNECTING, State.GREETING, State.HANDSHAKE, State.READY]


## Advances the connection; returns the messages that arrived, each an Array of PackedByteArray
## frames. Never blocks. After a failure, state is FAILED and `error` says why.
func poll() -> Array:
	var messages := []
	if not is_open():
		return messages
	_tcp.poll()
	var status := _tcp.get_status()
	if state == State.CONNECTING:
		if status == StreamPeerTCP.STATUS_CONNECTED:
			_greeting = _make_greeting()
			# Signature and major version first: libzmq then sends its whole greeting, so a
			# refused mechanism can be named before the peer hangs up.
			_put(_greeting.slice(0, 11))
			state = State.GREETING
		elif status == StreamPeerTCP.STATUS_ERROR or status == StreamPeerTCP.STATUS_NONE:
			_fail("cannot connect to %s: connection refused (is `npcface serve` running on that port?)" % _where)
			return messages
		else:
			_check_deadline("connecting to")
			return messages
	if not _read_available(status):
		return messages
	if state == State.GREETING and not _advance_greeting():
		return messages
	if state == State.HANDSHAKE and not _advance_handshake():
		return messages
	while state == State.READY:
		var frame: Variant = _parser.next_frame()
		if _parser.error != "":
			_fail(_parser.error)
			break
		if frame == null:
			break
		if frame.command:
			_handle_command(frame.body)
			continue
		_partial.append(frame.body)
		if not frame.more:
			messages.append(_partial)
			_partial = []
	return messages


## Sends one multipart message (frames: PackedByteArrays, at least one). False when not connected.
func send(frames: Array) -> bool:
	if state != State.READY:
		return false
	return _put(encode_frames(frames, false))


## Sends a ZMTP 3.1 PING; the peer's PONG counts in pongs_received.
func send_ping() -> bool:
	if state != State.READY or peer_minor_version < 1:
		return false
	var ping := _command_name("PING")
	ping.append_array(PackedByteArray([0, 0]))  # TTL 0: no timeout asked of the peer
	return _put(encode_frames([ping], true))


func close() -> void:
	if is_open():
		_tcp.disconnect_from_host()
		state = State.CLOSED
		if error == "":
			error = "closed by this client"


## The ZMTP bytes of `frames` (MORE on all but the last; commands are single frames).
static func encode_frames(frames: Array, command: bool) -> PackedByteArray:
	var out := StreamPeerBuffer.new()
	out.big_endian = true
	for i in frames.size():
		var body: PackedByteArray = frames[i]
		var flags := FLAG_COMMAND if command else (FLAG_MORE if i < frames.size() - 1 else 0)
		if body.size() > 255:
			out.put_u8(flags | FLAG_LONG)
			out.put_u64(body.size())
		else:
			out.put_u8(flags)
			out.put_u8(body.size())
		out.put_data(body)
	return out.data_array


func _make_greeting() -> PackedByteArray:
	var greeting := PackedByteArray()
	greeting.resize(GREETING_BYTES)  # zero filled: as-server 0, filler 0
	greeting[0] = 0xff
	greeting[9] = 0x7f
	greeting[10] = 3
	greeting[11] = 1
	var mechanism := "NULL".to_ascii_buffer()
	for i in mechanism.size():
		greeting[12 + i] = mechanism[i]
	return greeting


func _read_available(status: int) -> bool:
	var available := _tcp.get_available_bytes()
	if available > 0:
		var got: Array = _tcp.get_partial_data(available)
		if got[0] == OK:
			_parser.feed(got[1])
			bytes_received += got[1].size()
	elif status != StreamPeerTCP.STATUS_CONNECTED:
		_peer_hung_up()
		return false
	return true


func _peer_hung_up() -> void:
	match state:
		State.GREETING:
			_fail(
				(
					"%s closed the connection during the ZMTP greeting: it is not a ZeroMQ socket"
					% _where
				)
			)
		State.HANDSHAKE:
			# libzmq hangs up on a socket type that cannot pair with a DEALER.
			_fail(
				(
					"the peer at %s refused the handshake: it hung up on our READY (Socket-Type DEALER; npcface serves a ROUTER)"
					% _where
				)
			)
		_:
			_fail("the sidecar at %s closed the connection" % _where)


func _advance_greeting() -> bool:
	var peer := _parser.peek(GREETING_BYTES)
	if peer.size() >= 1 and peer[0] != 0xff or peer.size() >= 10 and (peer[9] & 0x01) != 0x01:
		_fail("%s is not a ZeroMQ socket (its first bytes are not a ZMTP greeting)" % _where)
		return false
	if peer.size() < GREETING_BYTES:
		return _check_deadline("the ZMTP greeting from")
	_parser.skip(GREETING_BYTES)
	if peer[10] < 3:
		_fail("%s speaks ZMTP %d.x; this client needs ZMTP 3.0 or later (libzmq 4+)" % [_where, peer[10]])
		return false
	peer_minor_version = peer[11] if peer[10] == 3 else 1
	var mechanism := peer.slice(12, 32).get_string_from_ascii()
	if mechanism != "NULL":
		_fail(
			(
				(
					"%s asks for the %s security mechanism; this client implements only NULL"
					+ " (run npcface serve on loopback without CurveZMQ keys)"
				)
				% [_where, mechanism]
			)
		)
		return false
	_put(_greeting.slice(11))
	var ready := _command_name("READY")
	ready.append_array(_property("Socket-Type", "DEALER".to_ascii_buffer()))
	_put(encode_frames([ready], true))
	state = State.HANDSHAKE
	return true


func _advance_handshake() -> bool:
	var frame: Variant = _parser.next_frame()
	if _parser.error != "":
		_fail(_parser.error)
		return false
	if frame == null:
		return _check_deadline("the ZMTP handshake with")
	if not frame.command:
		_fail("the peer at %s sent a message before its READY command" % _where)
		return false
	var parsed := _parse_command(frame.body)
	if parsed.name == "ERROR":
		_fail("the peer at %s refused the handshake: %s" % [_where, parsed.reason])
		return false
	if parsed.name != "READY":
		_fail("expected READY from the peer at %s, got %s" % [_where, parsed.name])
		return false
	peer_socket_type = parsed.properties.get("Socket-Type", PackedByteArray()).get_string_from_ascii()
	if peer_socket_type != "ROUTER":
		_fail(
			(
				"the peer at %s is a %s socket, not a ROUTER: a DEALER cannot talk to it (npcface serve binds a ROUTER)"
				% [_where, peer_socket_type if peer_socket_type != "" else "nameless"]
			)
		)
		return false
	state = State.READY
	return true


func _handle_command(body: PackedByteArray) -> void:
	var parsed := _parse_command(body)
	match parsed.name:
		"PING":
			# PONG echoes the ping's context (the bytes after its 2-byte TTL).
			var pong := _command_name("PONG")
			pong.append_array(parsed.rest.slice(2))
			_put(encode_frames([pong], true))
		"PONG":
			pongs_received += 1
		"ERROR":
			_fail("the peer at %s closed the connection with an error: %s" % [_where, parsed.reason])
		# Other commands (SUBSCRIBE, CANCEL, unknown ones) mean nothing to a DEALER: ignored.


## {name, rest (bytes after the name), properties (READY), reason (ERROR)}
static func _parse_command(body: PackedByteArray) -> Dictionary:
	var out := {"name": "", "rest": PackedByteArray(), "properties": {}, "reason": ""}
	if body.is_empty() or body.size() < 1 + body[0]:
		return out
	out.name = body.slice(1, 1 + body[0]).get_string_from_ascii()
	out.rest = body.slice(1 + body[0])
	var rest: PackedByteArray = out.rest
	if out.name == "ERROR" and rest.size() >= 1:
		out.reason = rest.slice(1, 1 + rest[0]).get_string_from_utf8()
	elif out.name == "READY":
		var at := 0
		while at < rest.size():
			var name_size: int = rest[at]
			if at + 1 + name_size + 4 > rest.size():
				break
			var name := rest.slice(at + 1, at + 1 + name_size).get_string_from_ascii()
			at += 1 + name_size
			var value_size: int = (rest[at] << 24) | (rest[at + 1] << 16) | (rest[at + 2] << 8) | rest[at + 3]
			at += 4
			out.properties[name] = rest.slice(at, at + value_size)
			at += value_size
	return out


static func _command_name(name: String) -> PackedByteArray:
	var out := PackedByteArray([name.length()])
	out.append_array(name.to_ascii_buffer())
	return out


static func _property(name: String, value: PackedByteArray) -> PackedByteArray:
	var out := _command_name(name)
	var size := value.size()
	out.append_array(PackedByteArray([(size >> 24) & 0xff, (size >> 16) & 0xff, (size >> 8) & 0xff, size & 0xff]))
	out.append_array(value)
	return out


func _put(bytes: PackedByteArray) -> bool:
	var status := _tcp.put_data(bytes)
	if status != OK:
		_fail("the connection to %s broke while sending: %s" % [_where, error_string(status)])
		return false
	return true


func _check_deadline(what: String) -> bool:
	if Time.get_ticks_msec() > _deadline_ms:
		_fail(
			(
				"timed out waiting for %s %s (is that port a ZeroMQ socket, is `npcface serve` running?)"
				% [what, _where]
			)
		)
	return false


func _fail(message: String) -> void:
	if error == "":
		error = message
	state = State.FAILED
	_tcp.disconnect_from_host()


## Splits a byte stream into ZMTP frames; feed() bytes as they come, next_frame() until null.
class FrameParser:
	var max_frame_bytes := 256 * 1024 * 1024
	var error := ""
	var _buffer := PackedByteArray()
	var _at := 0

	func feed(bytes: PackedByteArray) -> void:
		if _at > 0 and _at >= _buffer.size() / 2:  # drop what was read, now and then
			_buffer = _buffer.slice(_at)
			_at = 0
		_buffer.append_array(bytes)

	## Up to n unread bytes, without consuming them.
	func peek(n: int) -> PackedByteArray:
		return _buffer.slice(_at, _at + n)

	func skip(n: int) -> void:
		_at += n

	## {more, command, body} or null while the next frame is incomplete (or after an error).
	func next_frame() -> Variant:
		if error != "" or _buffer.size() - _at < 2:
			return null
		var flags: int = _buffer[_at]
		if flags & 0xf8:
			error = "bad ZMTP frame flags 0x%02x: the stream is out of sync" % flags
			return null
		var header := 2
		var size: int = _buffer[_at + 1]
		if flags & FLAG_LONG:
			header = 9
			if _buffer.size() - _at < 9:
				return null
			size = 0
			for i in range(1, 9):
				size = (size << 8) | _buffer[_at + i]
			if size < 0 or size > max_frame_bytes:
				error = "the peer sent a %d-byte frame, over the %d-byte limit" % [size, max_frame_bytes]
				return null
		if _buffer.size() - _at < header + size:
			return null
		var body := _buffer.slice(_at + header, _at + header + size)
		_at += header + size
		return {"more": (flags & FLAG_MORE) != 0, "command": (flags & FLAG_COMMAND) != 0, "body": body}
