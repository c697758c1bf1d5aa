# npcface Godot addon. MIT License, (c) the npcface authors.
#
# The typed npcface protocol (bridge/PROTOCOL.md) over one ZMTP DEALER. Call poll() every frame
# (NpcfaceSidecar does it from _process): it never blocks, decodes what arrived and emits signals.
# Every request method returns the request's `id` (the server echoes it in the reply or error).
# Server messages are Dictionaries with the fields PROTOCOL.md section 5 lists; fields the server
# omits are absent (read them with .get(key, default)).
class_name NpcfaceClient
extends RefCounted

## welcome (also sent as reply_received)
signal welcomed(welcome: Dictionary)
## A tick (section 5.4), including idle ticks (idle == true).
signal tick_received(tick: Dictionary)
## A rendered frame (section 5.5) and its payload (rgba8 / rgb8 pixels or a JPEG file).
signal frame_received(frame: Dictionary, payload: PackedByteArray)
signal line_ended(line_end: Dictionary)
## An `error` from the server (section 5.10), or one this client made up for a server message it
## could not read (code "bad_server_message").
signal error_received(error: Dictionary)
## Every other reply: avatar, opened, closed, pong, stats, welcome, and unknown message types.
signal reply_received(reply: Dictionary)
## The connection failed or broke; `reason` is one sentence.
signal disconnected(reason: String)
## The server forgot this client (a restart behind the same connection, or its idle timeout):
## say hello again, re-upload avatars, re-open sessions (NpcfaceSidecar does all that).
signal forgotten

const PROTOCOL := "1.2"

var dealer := NpcfaceZmtpDealer.new()
## The last welcome ({} before it).
var welcome := {}
var client_name := "godot-npcface/0.1"
## Send `ping` after this long without sending anything (welcome.heartbeat_s once known).
var heartbeat_s := 5.0
var ticks_received := 0
var frames_received := 0

var _counter := 0
var _last_send_ms := 0
var _was_open := false


func connect_to(host := "127.0.0.1", port := 5555, timeout_s := 5.0) -> void:
	dealer.connect_to(host, port, timeout_s)
	_was_open = true


func is_ready() -> bool:
	return dealer.is_ready()


func close() -> void:
	dealer.close()


## Reads what arrived (never blocks), emits the signals, sends heartbeats.
func poll() -> void:
	for frames in dealer.poll():
		_dispatch(frames)
	if _was_open and not dealer.is_open():
		_was_open = false
		disconnected.emit(dealer.error)
		return
	var quiet_ms := Time.get_ticks_msec() - _last_send_ms
	if dealer.is_ready() and not welcome.is_empty() and quiet_ms > heartbeat_s * 1000.0:
		ping()


# ---------------------------------------------------------------- requests (section 4)


func hello(protocol := PROTOCOL) -> String:
	return send_request({"type": "hello", "protocol": protocol, "client": client_name})


## `image`: the PNG/JPEG/WebP/BMP file's bytes, unchanged.
func upload_avatar(image: PackedByteArray, face_index: Variant = null) -> String:
	return send_request({"type": "upload_avatar", "face_index": face_index}, [image])


## `settings`: any fields of PROTOCOL.md section 4.3 besides `session` (outputs, channels, fps,
## avatar, frame_size, frame_format, frame_window, frame_policy, idle, motion, seed, ...).
func open_session(session: String, settings := {}) -> String:
	var header := {"type": "open", "session": session}
	header.merge(settings)
	return send_request(header)


func send_audio(
	session: String,
	seq: int,
	pcm: PackedByteArray,
	rate: int,
	channels := 1,
	sample_format := "s16le",
	text: Variant = null
) -> String:
	var header := {
		"type": "audio",
		"session": session,
		"seq": seq,
		"rate": rate,
		"channels": channels,
		"format": sample_format,
		"text": text,
	}
	return send_request(header, [pcm])


func end_line(session: String) -> String:
	return send_request({"type": "end_line", "session": session})


## `time`: seconds on the line's audio timeline, null = now.
func set_emotion(
	session: String, emotion: String, intensity := 1.0, time: Variant = null, ramp := 0.3
) -> String:
	var header := {
		"type": "emotion",
		"session": session,
		"emotion": emotion,
		"intensity": intensity,
		"time": time,
		"ramp": ramp,
	}
	return send_request(header)


func set_gaze(session: String, yaw: float, pitch: float, time: Variant = null) -> String:
	var header := {"type": "gaze", "session": session, "yaw": yaw, "pitch": pitch, "time": time}
	return send_request(header)


func set_controls(
	session: String, motion_amplitude: Variant = null, head_distance: Variant = null, time: Variant = null
) -> String:
	var header := {
		"type": "controls",
		"session": session,
		"motion_amplitude": motion_amplitude,
		"head_distance": head_distance,
		"time": time,
	}
	return send_request(header)


func frame_ack(session: String, count := 1) -> String:
	return send_request({"type": "frame_ack", "session": session, "count": count})


func close_session(session: String) -> String:
	return send_request({"type": "close", "session": session})


func ping() -> String:
	return send_request({"type": "ping"})


func stats() -> String:
	return send_request({"type": "stats"})


## Sends any header (a fresh `id` is added unless it has one) and payloads; fields set to null
## are left out (the protocol reads absent and nil alike). Returns the id, "" if not connected.
func send_request(header: Dictionary, payloads: Array = []) -> String:
	var message := {}
	for key in header:
		if header[key] != null:
			message[key] = header[key]
	if not message.has("id"):
		_counter += 1
		message["id"] = "g%d" % _counter
	var frames: Array = [NpcfaceMsgpack.encode(message)]
	frames.append_array(payloads)
	if not dealer.send(frames):
		return ""
	_last_send_ms = Time.get_ticks_msec()
	return message["id"]


# ---------------------------------------------------------------- server messages (section 5)


func _dispatch(frames: Array) -> void:
	var decoded := NpcfaceMsgpack.decode(frames[0])
	if decoded.has("error") or typeof(decoded.value) != TYPE_DICTIONARY:
		var why: String = decoded.get("error", "the header is not a map")
		error_received.emit({"type": "error", "code": "bad_server_message", "message": why, "details": {}})
		return
	var message: Dictionary = decoded.value
	match message.get("type", ""):
		"tick":
			ticks_received += 1
			tick_received.emit(message)
		"frame":
			frames_received += 1
			frame_received.emit(message, frames[1] if frames.size() > 1 else PackedByteArray())
		"line_end":
			line_ended.emit(message)
		"error":
			error_received.emit(message)
			if message.get("code", "") == "hello_required" and not welcome.is_empty():
				welcome = {}
				forgotten.emit()
		"welcome":
			welcome = message
			heartbeat_s = float(message.get("heartbeat_s", heartbeat_s))
			welcomed.emit(message)
			reply_received.emit(message)
		"pong":
			var instance: String = message.get("instance", "")
			var restarted: bool = not welcome.is_empty() and instance != welcome.get("instance", instance)
			reply_received.emit(message)
			if restarted:
				welcome = {}
				forgotten.emit()
		_:
			reply_received.emit(message)
