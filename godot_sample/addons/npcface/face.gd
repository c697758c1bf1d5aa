# npcface Godot addon. MIT License, (c) the npcface authors.
#
# NpcfaceFace: one talking face (one sidecar session). say() sends a line from an AudioStreamWAV,
# plays it on `audio_player`, and emits `tick_applied` with the tick due at what the player hears
# (the audio server's playback clock), so appliers (blend shapes, bones, frames) stay in step with
# the sound. Streamed speech: begin_stream(), push_pcm() as the audio is made, end_stream(); the
# face then follows its own clock started at the first chunk, delayed by `stream_delay_s`
# (the server's lookahead plus a margin, PROTOCOL.md section 7.2). Between lines, with `idle`,
# idle ticks are applied as they arrive.
@icon("res://addons/npcface/icon.svg")
class_name NpcfaceFace
extends Node

## The tick due now (emitted once per tick, in order; idle ticks have idle == true).
signal tick_applied(tick: Dictionary)
## The frame due now, as an Image (rgba8/rgb8/jpeg decoded).
signal frame_applied(frame: Dictionary, image: Image)
signal opened(opened: Dictionary)
signal line_finished(line_end: Dictionary)
signal face_error(error: Dictionary)

## The session's name on the sidecar ("" = this node's name).
@export var session_name := ""
@export var outputs: PackedStringArray = ["latents"]
@export var channels: PackedStringArray = ["arkit"]
@export_range(1.0, 120.0) var fps := 30.0
## Idle motion (blinks, breathing, glances) between lines.
@export var idle := true
## The portrait for "frames" output: a PNG/JPEG file path (res:// or absolute).
@export_file("*.png", "*.jpg", "*.jpeg", "*.webp", "*.bmp") var portrait_path := ""
@export var frame_size := Vector2i(256, 256)
@export_enum("rgba8", "rgb8", "jpeg") var frame_format := "rgba8"
## "every" suits say() (the whole line is sent at once: "latest" would keep only the newest few
## frames of it); "latest" suits speech streamed as it is made (PROTOCOL.md section 7.3).
@export_enum("every", "latest") var frame_policy := "every"
@export_enum("rules", "learned") var motion := "rules"
## Plays the line; its playback position is the face's clock.
@export var audio_player: NodePath
## Streamed lines: how far the face runs behind the first chunk sent. A tick needs audio up to
## its time + lookahead_s (0.12 s), which arrives a chunk's length later than its start: with
## 0.1 s chunks, 0.2 s (PROTOCOL.md 7.2's advice) is late on most ticks; 0.3 s is not.
@export var stream_delay_s := 0.3
## say(): the longest the sound waits for the line's first tick before it plays anyway.
@export var start_wait_s := 0.5

var is_open := false
var speaking := false
var lines_finished := 0
var ticks_applied := 0

var _ticks: Array[Dictionary] = []  # this line's ticks, not yet applied
var _frames: Array = []  # this line's [frame, payload] pairs, not yet shown
var _line_started_ms := -1  # streamed lines: when the first chunk went out
var _stream_seq := 0
var _stream_format := {}
var _line_ending := false
var _line_end := {}  # the line_end, kept until the player has heard the line's last tick
var _player: Node = null
var _restore := {}  # the last emotion / gaze set, sent again when the session is re-opened
var _opened_before := false
var _start_by_ms := -1  # say(): play the sound by then (-1: nothing waiting to play)
var _played_by_say := false  # this line's clock is audio_player's playback (else the wall clock)
var _heard_floor := -INF  # the playback clock's highest reading this line: it never runs back


func _ready() -> void:
	if session_name == "":
		session_name = name
	_player = get_node_or_null(audio_player)
	var settings := {
		"outputs": Array(outputs),
		"channels": Array(channels),
		"fps": fps,
		"idle": idle,
		"motion": motion,
	}
	var portrait := PackedByteArray()
	if outputs.has("frames"):
		settings["frame_size"] = [frame_size.x, frame_size.y]
		settings["frame_format"] = frame_format
		settings["frame_policy"] = frame_policy
		portrait = FileAccess.get_file_as_bytes(portrait_path)
		if portrait.is_empty():
			push_error("npcface: NpcfaceFace %s: cannot read portrait_path '%s'" % [name, portrait_path])
	_sidecar().open_session(self, session_name, settings, portrait)


func _exit_tree() -> void:
	_sidecar().close_session(session_name)


## Says a line: `stream` is 16-bit or 8-bit PCM (not compressed), mono or stereo. Returns false
## (and pushes an error) when it cannot be sent.
func say(stream: AudioStreamWAV, text := "") -> bool:
	var pcm := pcm_s16(stream)
	if pcm.is_empty():
		push_error("npcface: say() needs a 16-bit or 8-bit PCM AudioStreamWAV")
		return false
	if not begin_stream(stream.mix_rate, 2 if stream.stereo else 1, text):
		return false
	var chunk_bytes := int(stream.mix_rate * 0.1) * (4 if stream.stereo else 2)
	for start in range(0, pcm.size(), chunk_bytes):
		push_pcm(pcm.slice(start, start + chunk_bytes))
	end_stream()
	if _player != null:
		# Played when the line's first tick arrives (or after start_wait_s), so the face does
		# not start behind the sound by the server's first-tick latency.
		_player.stream = stream
		_start_by_ms = Time.get_ticks_msec() + int(start_wait_s * 1000.0)
		_played_by_say = true
	return true


## Starts a streamed line (s16le PCM at `rate`).
func begin_stream(rate: int, channel_count := 1, text := "") -> bool:
	if not is_open or speaking:
		push_error("npcface: %s cannot start a line now (open: %s, speaking: %s)" % [name, is_open, speaking])
		return false
	_ticks.clear()
	_frames.clear()
	speaking = true
	_line_ending = false
	_line_end = {}
	_played_by_say = false
	_heard_floor = -INF
	_stream_seq = 0
	_stream_format = {"rate": rate, "channels": channel_count, "text": text if text != "" else null}
	_line_started_ms = -1
	return true


func push_pcm(pcm: PackedByteArray) -> void:
	if not speaking or _line_ending:
		return
	var client: NpcfaceClient = _sidecar().client
	var text: Variant = _stream_format.text if _stream_seq == 0 else null
	client.send_audio(session_name, _stream_seq, pcm, _stream_format.rate, _stream_format.channels, "s16le", text)
	if _stream_seq == 0:
		_line_started_ms = Time.get_ticks_msec()
	_stream_seq += 1


func end_stream() -> void:
	if speaking and not _line_ending:
		_line_ending = true
		_sidecar().client.end_line(session_name)


func set_emotion(emotion: String, intensity := 1.0, time: Variant = null, ramp := 0.3) -> void:
	_restore["emotion"] = [emotion, intensity, null, ramp]
	_sidecar().client.set_emotion(session_name, emotion, intensity, time, ramp)


func set_gaze(yaw: float, pitch: float, time: Variant = null) -> void:
	_restore["gaze"] = [yaw, pitch, null]
	_sidecar().client.set_gaze(session_name, yaw, pitch, time)


## Seconds on the current line's timeline that the player hears now (-1 before it starts).
func line_clock() -> float:
	if _start_by_ms >= 0:
		return -1.0  # say(): the sound has not started
	if _played_by_say:
		if not _player.playing:
			return INF  # the sound has finished: everything is due
		# The playback position advances in mix-sized steps; the time since the last mix fills
		# in between, and the output latency is what the speakers have not played yet.
		var heard: float = _player.get_playback_position() + AudioServer.get_time_since_last_mix()
		# Its two parts are read apart while the audio thread mixes, so a reading can come out
		# up to a mix buffer behind the one before (Godot's docs call this clock jittery); a
		# tick once due must stay due, so the line's clock holds its highest reading.
		_heard_floor = maxf(_heard_floor, heard - AudioServer.get_output_latency())
		return _heard_floor
	if _line_started_ms < 0:
		return -1.0
	return (Time.get_ticks_msec() - _line_started_ms) / 1000.0 - stream_delay_s


func _process(_delta: float) -> void:
	if not speaking:
		return
	if _start_by_ms >= 0 and (not _ticks.is_empty() or Time.get_ticks_msec() >= _start_by_ms):
		_start_by_ms = -1
		_player.play()
	var now := line_clock()
	var due: Dictionary = {}
	while not _ticks.is_empty() and float(_ticks[0].time) <= now:
		due = _ticks.pop_front()
	if not due.is_empty():
		_apply_tick(due)
	var frame: Array = []
	while not _frames.is_empty() and float(_frames[0][0].time) <= now:
		frame = _frames.pop_front()
	if not frame.is_empty():
		_show_frame(frame[0], frame[1])
	if not _line_end.is_empty() and _ticks.is_empty() and _frames.is_empty():
		speaking = false
		lines_finished += 1
		line_finished.emit(_line_end)


## The 16-bit little-endian PCM of a WAV stream ([] for compressed formats).
static func pcm_s16(stream: AudioStreamWAV) -> PackedByteArray:
	if stream.format == AudioStreamWAV.FORMAT_16_BITS:
		return stream.data
	if stream.format == AudioStreamWAV.FORMAT_8_BITS:  # signed 8-bit in Godot
		var out := PackedByteArray()
		out.resize(stream.data.size() * 2)
		for i in stream.data.size():
			out.encode_s16(i * 2, stream.data.decode_s8(i) * 256)
		return out
	return PackedByteArray()


func _apply_tick(tick: Dictionary) -> void:
	ticks_applied += 1
	tick_applied.emit(tick)


func _show_frame(frame: Dictionary, payload: PackedByteArray) -> void:
	var image := frame_image(frame, payload)
	if image != null:
		frame_applied.emit(frame, image)


## A frame message's pixels as an Image (null if they do not fit the header).
static func frame_image(frame: Dictionary, payload: PackedByteArray) -> Image:
	var width := int(frame.get("width", 0))
	var height := int(frame.get("height", 0))
	match frame.get("format", ""):
		"rgba8":
			if payload.size() == width * height * 4:
				return Image.create_from_data(width, height, false, Image.FORMAT_RGBA8, payload)
		"rgb8":
			if payload.size() == width * height * 3:
				return Image.create_from_data(width, height, false, Image.FORMAT_RGB8, payload)
		"jpeg":
			var image := Image.new()
			if image.load_jpg_from_buffer(payload) == OK:
				return image
	return null


# ---------------------------------------------------------------- called by NpcfaceSidecar


func _npcface_opened(message: Dictionary) -> void:
	is_open = true
	if _opened_before:  # re-opened after a sidecar restart: the server forgot emotion and gaze
		if _restore.has("emotion"):
			_sidecar().client.callv("set_emotion", [session_name] + _restore.emotion)
		if _restore.has("gaze"):
			_sidecar().client.callv("set_gaze", [session_name] + _restore.gaze)
	_opened_before = true
	opened.emit(message)


func _npcface_tick(tick: Dictionary) -> void:
	if tick.get("idle", false):
		if not speaking:
			_apply_tick(tick)
		return
	_ticks.append(tick)


func _npcface_frame(frame: Dictionary, payload: PackedByteArray) -> void:
	_sidecar().client.frame_ack(session_name)  # taken in: the window moves on
	if frame.get("idle", false):
		if not speaking:
			_show_frame(frame, payload)
		return
	_frames.append([frame, payload])


func _npcface_line_end(line_end: Dictionary) -> void:
	# Every tick and frame of the line has arrived; _process finishes the line once they are due.
	_line_end = line_end


func _npcface_error(error: Dictionary) -> void:
	face_error.emit(error)


func _npcface_lost() -> void:
	# The sidecar went away: the line in progress is lost (the sidecar re-opens the session).
	is_open = false
	speaking = false
	_start_by_ms = -1
	_ticks.clear()
	_frames.clear()


func _sidecar() -> Node:
	return get_node("/root/NpcfaceSidecar")
