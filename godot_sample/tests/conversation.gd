# npcface Godot addon. MIT License, (c) the npcface authors.
#
# The whole conversation with a real `npcface serve`, headless. tests/test_godot_sidecar.py starts
# the server, writes a config JSON and runs:
#   bash tools/godot.sh --path godot_sample -s res://tests/conversation.gd -- CONFIG.json
# CONFIG: port, pcm (s16le mono file), rate, text, portrait, emotion_time, out (results JSON).
# The results are facts for pytest to check (which does the asserting, against the Python client
# too); this script only fails (exit 1) when it cannot get them at all.
extends SceneTree

const WAIT_S := 60.0
const FaceMesh := preload("res://demo/face_mesh.gd")

var config := {}
var results := {}
var pcm := PackedByteArray()


func _initialize() -> void:
	Engine.max_fps = 500
	var args := OS.get_cmdline_user_args()
	config = JSON.parse_string(FileAccess.get_file_as_string(args[0]))
	pcm = FileAccess.get_file_as_bytes(config.pcm)
	_main.call_deferred()


func _main() -> void:
	var failure := ""
	results["steps_done"] = []
	for step in [_latents_and_frames, _errors, _nodes]:
		failure = await step.call()
		if failure != "":
			break
		results.steps_done.append(step.get_method())  # a script error skips this
	results["failure"] = failure
	var out := FileAccess.open(config.out, FileAccess.WRITE)
	out.store_string(JSON.stringify(results))
	out.close()
	quit(1 if failure != "" else 0)


## Polls `client` each frame until `done` holds; false after WAIT_S.
func _until(client: NpcfaceClient, done: Callable) -> bool:
	var deadline := Time.get_ticks_msec() + int(WAIT_S * 1000.0)
	while not done.call():
		if Time.get_ticks_msec() > deadline:
			return false
		if client != null:
			client.poll()
		await process_frame
	return true


## Connects, says hello; returns the client, or null with results["connect_error"] set.
func _connected(protocol := "1.2") -> NpcfaceClient:
	var client := NpcfaceClient.new()
	client.connect_to("127.0.0.1", int(config.port))
	if not await _until(client, func() -> bool: return client.is_ready() or not client.dealer.is_open()):
		return null
	if not client.is_ready():
		results["connect_error"] = client.dealer.error
		return null
	if protocol != "":
		client.hello(protocol)
		if not await _until(client, func() -> bool: return not client.welcome.is_empty()):
			return null
	return client


## Sends a request and waits for the reply or error that echoes its id.
func _request(client: NpcfaceClient, method: String, args: Array) -> Dictionary:
	var got := {}
	var take := func(message: Dictionary) -> void: got[message.get("id", "")] = message
	client.reply_received.connect(take)
	client.error_received.connect(take)
	var id: String = client.callv(method, args)
	await _until(client, func() -> bool: return got.has(id))
	client.reply_received.disconnect(take)
	client.error_received.disconnect(take)
	return got.get(id, {"type": "timeout"})


## Sends the line in 0.1 s chunks (as the Python client's say_pcm does), "happy" from
## emotion_time sent after a second of audio; collects ticks, frames and line_end.
func _say(client: NpcfaceClient, session: String, on_frame: Callable) -> Dictionary:
	var line := {"ticks": [], "frames": 0, "line_end": {}, "errors": []}
	var on_tick := func(tick: Dictionary) -> void:
		if tick.session == session and not tick.get("idle", false):
			line.ticks.append(tick)
	var frame_taken := func(frame: Dictionary, payload: PackedByteArray) -> void:
		if frame.session == session and not frame.get("idle", false):
			line.frames += 1
			on_frame.call(frame, payload)
		client.frame_ack(frame.session)
	var ended := func(message: Dictionary) -> void:
		if message.session == session:
			line.line_end = message
	var failed := func(error: Dictionary) -> void: line.errors.append(error)
	client.tick_received.connect(on_tick)
	client.frame_received.connect(frame_taken)
	client.line_ended.connect(ended)
	client.error_received.connect(failed)
	var rate := int(config.rate)
	var chunk_bytes := int(0.1 * rate) * 2
	var seq := 0
	for start in range(0, pcm.size(), chunk_bytes):
		var text: Variant = config.text if seq == 0 else null
		client.send_audio(session, seq, pcm.slice(start, start + chunk_bytes), rate, 1, "s16le", text)
		seq += 1
		if seq == 10:
			client.set_emotion(session, "happy", 0.9, float(config.emotion_time), 0.2)
	client.end_line(session)
	await _until(client, func() -> bool: return not line.line_end.is_empty())
	client.tick_received.disconnect(on_tick)
	client.frame_received.disconnect(frame_taken)
	client.line_ended.disconnect(ended)
	client.error_received.disconnect(failed)
	return line


func _latents_and_frames() -> String:
	var client := await _connected()
	if client == null:
		return "no welcome from the sidecar: %s" % results.get("connect_error", "timeout")
	var welcome := client.welcome
	results["welcome"] = {
		"protocol": welcome.get("protocol"),
		"arkit": welcome.capabilities.channels.arkit,
		"heartbeat_s": welcome.get("heartbeat_s"),
		"peer_socket_type": client.dealer.peer_socket_type,
	}
	var portrait := FileAccess.get_file_as_bytes(config.portrait)
	var avatar := await _request(client, "upload_avatar", [portrait])
	var again := await _request(client, "upload_avatar", [portrait])
	results["avatar"] = {"type": avatar.type, "again_same": again.get("avatar") == avatar.get("avatar"),
		"again_cached": again.get("cached"), "width": avatar.get("width")}
	var opened := await _request(client, "open_session",
		["latents", {"channels": ["arkit"], "fps": 30, "seed": 0, "motion": "rules"}])
	results["opened_latents"] = opened
	var line := await _say(client, "latents", func(_f: Dictionary, _p: PackedByteArray) -> void: pass)
	results["latents"] = {
		"ticks": line.ticks.map(func(t: Dictionary) -> Array:
			return [t.index, t.time] + t.head_rotation + t.arkit),
		"line_end": line.line_end,
		"errors": line.errors,
	}
	# Frames: 256x256 RGBA shown on a TextureRect through the applier, read back from the texture.
	var rect := TextureRect.new()
	root.add_child(rect)
	var applier := NpcfaceFrameApplier.new()
	applier.target = rect.get_path()
	root.add_child(applier)
	var shown := {"bytes_match": 0, "checked": 0, "spread": [], "first_read_back": false}
	var show := func(frame: Dictionary, payload: PackedByteArray) -> void:
		applier.show_image(NpcfaceFace.frame_image(frame, payload))
		if shown.checked == 0:  # the dummy renderer keeps a texture's first image only
			shown.first_read_back = rect.texture.get_image().get_data() == payload
		shown.checked += 1
		if applier.image.get_data() == payload and rect.texture == applier.texture:
			shown.bytes_match += 1
		var mouth := applier.image.get_region(Rect2i(96, 150, 64, 48)).get_data()
		var total := 0
		for i in range(0, mouth.size(), 4):
			total += mouth[i] + mouth[i + 1] + mouth[i + 2]
		shown.spread.append(total / (mouth.size() / 4.0 * 765.0))
	opened = await _request(client, "open_session", ["frames", {
		"outputs": ["latents", "frames"], "avatar": avatar.get("avatar", ""), "frame_size": [256, 256],
		"frame_format": "rgba8", "frame_policy": "every", "fps": 30, "motion": "rules"}])
	results["opened_frames"] = opened
	line = await _say(client, "frames", show)
	results["frames"] = {
		"ticks": line.ticks.size(), "frames": line.frames, "line_end": line.line_end,
		"errors": line.errors, "checked": shown.checked, "bytes_match": shown.bytes_match,
		"texture": "%dx%d" % [rect.texture.get_width(), rect.texture.get_height()],
		"first_read_back": shown.first_read_back,
		"textures_made": 1 if applier.texture == rect.texture else 2,
		"center_brightness_range": [shown.spread.min(), shown.spread.max()] if shown.spread else [],
	}
	results["stats"] = await _request(client, "stats", [])
	results["closed"] = await _request(client, "close_session", ["latents"])
	client.close()
	return ""


func _errors() -> String:
	var codes := {}
	# hello_required: a new connection that has not said hello.
	var fresh := await _connected("")
	if fresh == null:
		return "no second connection"
	codes["hello_required"] = await _request(fresh, "stats", [])
	codes["version_mismatch"] = await _request(fresh, "hello", ["2.0"])
	fresh.close()
	var c := await _connected()
	codes["bad_request"] = await _request(c, "send_request", [{"type": "ping", "bogus": 1}])
	codes["unknown_session"] = await _request(c, "end_line", ["nobody"])
	await _request(c, "open_session", ["a", {}])
	codes["session_exists"] = await _request(c, "open_session", ["a", {}])
	codes["no_line"] = await _request(c, "end_line", ["a"])
	codes["bad_control"] = await _request(c, "set_emotion", ["a", "grumpy"])
	codes["out_of_order"] = await _request(c, "send_audio", ["a", 5, pcm.slice(0, 3200), 16000])
	codes["bad_audio"] = await _request(c, "send_audio", ["a", 0, PackedByteArray([1, 2, 3]), 16000])
	var long_text := "a".repeat(4001)
	codes["text_too_long"] = await _request(c, "send_audio", ["a", 0, pcm.slice(0, 3200), 16000, 1, "s16le", long_text])
	await _request(c, "send_audio", ["a", 0, pcm.slice(0, 3200), 16000])
	codes["bad_text"] = await _request(c, "send_audio", ["a", 1, pcm.slice(0, 3200), 16000, 1, "s16le", "late"])
	var silence := PackedByteArray()
	silence.resize(16000 * 2 * int(config.max_line_seconds + 1))
	codes["line_too_long"] = await _request(c, "send_audio", ["a", 1, silence, 16000])
	var too_big := PackedByteArray()
	too_big.resize(int(config.max_message_bytes) + 1)
	codes["message_too_large"] = await _request(c, "send_audio", ["a", 1, too_big, 16000])
	codes["avatar_required"] = await _request(c, "open_session", ["b", {"outputs": ["frames"]}])
	codes["unknown_avatar"] = await _request(c, "open_session", ["b", {"outputs": ["frames"], "avatar": "0".repeat(64)}])
	codes["bad_image"] = await _request(c, "upload_avatar", ["not an image".to_utf8_buffer()])
	var grey := Image.create(256, 256, false, Image.FORMAT_RGB8)
	grey.fill(Color(0.5, 0.5, 0.5))
	codes["no_face"] = await _request(c, "upload_avatar", [grey.save_png_to_buffer()])
	var huge := Image.create(7000, 6000, false, Image.FORMAT_L8)  # 42 MP, a few kB as PNG
	codes["avatar_too_large"] = await _request(c, "upload_avatar", [huge.save_png_to_buffer()])
	for i in int(config.max_sessions_per_client):
		await _request(c, "open_session", ["many%d" % i, {}])
	codes["too_many_sessions"] = await _request(c, "open_session", ["one_more", {}])
	# A header that is not msgpack goes through the dealer itself.
	var got := []
	c.error_received.connect(func(e: Dictionary) -> void: got.append(e))
	c.dealer.send([PackedByteArray([0xc1])])
	await _until(c, func() -> bool: return not got.is_empty())
	codes["bad_message"] = got[0] if got else {"type": "timeout"}
	codes["alive_after_errors"] = await _request(c, "ping", [])
	results["errors"] = codes
	c.close()
	return ""


## The node layer: NpcfaceSidecar (the autoload), NpcfaceFace playing an AudioStreamWAV on an
## AudioStreamPlayer, NpcfaceBlendShapeApplier on a generated mesh, NpcfaceFrameApplier.
func _nodes() -> String:
	var sidecar: Node = root.get_node("NpcfaceSidecar")
	sidecar.port = int(config.port)
	var lines := []  # the face's line_end messages
	var arrived := {}  # tick index -> the face's clock when it arrived (the first line's ticks)
	var player := AudioStreamPlayer.new()
	root.add_child(player)
	var mesh := MeshInstance3D.new()
	mesh.mesh = FaceMesh.build()
	root.add_child(mesh)
	var face := NpcfaceFace.new()
	face.name = "guard"
	face.audio_player = player.get_path()
	face.outputs = ["latents", "frames"]
	face.portrait_path = config.portrait
	var applier := NpcfaceBlendShapeApplier.new()
	applier.mesh = mesh.get_path()
	face.add_child(applier)
	# A rig named otherwise ("jaw_open"), bound through a mapping that also halves the weight.
	var other := MeshInstance3D.new()
	other.mesh = FaceMesh.build({"JawOpen": "jaw_open"})
	root.add_child(other)
	var mapped := NpcfaceBlendShapeApplier.new()
	mapped.mesh = other.get_path()
	mapped.mapping = NpcfaceShapeMapping.new()
	mapped.mapping.names = {"JawOpen": "jaw_open"}
	mapped.mapping.scales = {"JawOpen": 0.5}
	face.add_child(mapped)
	# Head and eye bones.
	var skeleton := Skeleton3D.new()
	for bone in ["Head", "LeftEye", "RightEye"]:
		skeleton.add_bone(bone)
	skeleton.set_bone_parent(1, 0)
	skeleton.set_bone_parent(2, 0)
	root.add_child(skeleton)
	var bones := NpcfaceBoneApplier.new()
	bones.skeleton = skeleton.get_path()
	face.add_child(bones)
	var rect := TextureRect.new()
	root.add_child(rect)
	var frames := NpcfaceFrameApplier.new()
	frames.target = rect.get_path()
	face.add_child(frames)
	var jaw := mesh.find_blend_shape_by_name("JawOpen")
	var last_frame := {"image": Image.new()}  # lambdas capture locals by value: mutate, not assign
	face.frame_applied.connect(func(_f: Dictionary, image: Image) -> void: last_frame.image = image)
	# Idle frames (the session opens with idle: true) are shown too, outside any line's count.
	var idle_frames := {"shown": 0}
	face.frame_applied.connect(func(f: Dictionary, _image: Image) -> void:
		if f.get("idle", false):
			idle_frames.shown += 1)
	var lags := []
	var applied_times := []
	var jaw_weights := []
	face.tick_applied.connect(func(tick: Dictionary) -> void:
		if face.speaking and player.playing and lines.is_empty():
			# The face's own delay: from when the tick was both due and there, to when applied.
			var ready_at := maxf(float(tick.time), arrived.get(tick.index, -1.0))
			lags.append(face.line_clock() - ready_at)
			applied_times.append(float(tick.time))
			jaw_weights.append(mesh.get_blend_shape_value(jaw)))
	root.add_child(face)
	# Connected after the appliers (they connect in _ready): reads what they have just applied.
	var checks := {"mapped": 0, "mapped_wrong": 0, "yaw": 0, "yaw_wrong": 0, "gaze": 0, "gaze_wrong": 0}
	var other_jaw := other.find_blend_shape_by_name("jaw_open")
	face.tick_applied.connect(func(tick: Dictionary) -> void:
		if tick.get("idle", false):
			return
		checks.mapped += 1
		if absf(other.get_blend_shape_value(other_jaw) - 0.5 * mesh.get_blend_shape_value(jaw)) > 1e-6:
			checks.mapped_wrong += 1
		# Yaw + = the character's left; it faces +Z, so its left is +X.
		var forward := Quaternion(skeleton.get_bone_pose_rotation(0)) * Vector3(0, 0, 1)
		if absf(tick.head_rotation[0]) > 1.0:
			checks.yaw += 1
			checks.yaw_wrong += 1 if signf(forward.x) != signf(tick.head_rotation[0]) else 0
		var eye := Quaternion(skeleton.get_bone_pose_rotation(1)) * Vector3(0, 0, 1)
		if absf(tick.gaze_left[0]) > 1.0:
			checks.gaze += 1
			checks.gaze_wrong += 1 if signf(eye.x) != signf(tick.gaze_left[0]) else 0)
	sidecar.client.tick_received.connect(func(tick: Dictionary) -> void:
		if not tick.get("idle", false) and lines.is_empty():
			arrived[tick.index] = face.line_clock())
	if not await _until(null, func() -> bool: return face.is_open):
		return "the face's session did not open"
	var wav := AudioStreamWAV.new()
	wav.format = AudioStreamWAV.FORMAT_16_BITS
	wav.mix_rate = int(config.rate)
	wav.data = pcm
	await _until(null, func() -> bool: return face.ticks_applied >= 3)  # idle ticks: it lives
	var idle_before := face.ticks_applied
	var line_end := {}
	face.line_finished.connect(func(message: Dictionary) -> void:
		lines.append(message)
		if lines.size() == 1:
			line_end.merge(message))
	face.set_gaze(25.0, 0.0)  # to the character's left, from now on
	face.say(wav, config.text)
	if not await _until(null, func() -> bool: return face.lines_finished == 1):
		return "the face's line did not finish"
	# A streamed line (as from a TTS): 1.5 s of the audio pushed in real time, 0.1 s chunks; the
	# face follows its own clock, stream_delay_s behind the first chunk.
	var streamed := {"lags": [], "line_end": {}, "arrived": {}}
	face.tick_applied.connect(func(tick: Dictionary) -> void:
		if face.speaking and not tick.get("idle", false) and lines.size() == 1:
			var ready_at := maxf(float(tick.time), streamed.arrived.get(tick.index, -1.0))
			streamed.lags.append(face.line_clock() - ready_at))
	sidecar.client.tick_received.connect(func(tick: Dictionary) -> void:
		if not tick.get("idle", false) and lines.size() == 1:
			streamed.arrived[tick.index] = face.line_clock())
	face.begin_stream(int(config.rate), 1, "")
	var chunk := int(0.1 * int(config.rate)) * 2
	for i in 15:
		face.push_pcm(pcm.slice(i * chunk, (i + 1) * chunk))
		var next := Time.get_ticks_msec() + 100
		await _until(null, func() -> bool: return Time.get_ticks_msec() >= next)
	face.end_stream()
	await _until(null, func() -> bool: return lines.size() == 2)
	var on_time: int = streamed.arrived.values().filter(func(t: float) -> bool: return t <= 0.0).size()
	results["streamed"] = {
		"lags": streamed.lags, "line_end": lines[-1] if lines.size() == 2 else {}, "arrived_before_due": on_time,
	}
	var pixels: Image = rect.texture.get_image() if rect.texture else null
	lags.sort()
	results["nodes"] = {
		"bound_shapes": applier.bindings.size(),
		"mapped_bound": mapped.bindings.size(),
		"checks": checks,
		"idle_ticks_before_line": idle_before,
		"ticks_applied_in_line": lags.size(),
		"lag_s": lags,
		"late_arrivals": arrived.values().filter(func(t: float) -> bool: return t > 0.0).size(),
		"applied_times": applied_times,
		"line_end": line_end,
		"jaw_max": jaw_weights.max() if jaw_weights else 0.0,
		"jaw_min": jaw_weights.min() if jaw_weights else 0.0,
		"frames_shown": frames.frames_shown,
		"idle_frames_shown": idle_frames.shown,
		"texture": "%dx%d" % [pixels.get_width(), pixels.get_height()] if pixels else "",
		"texture_is_last_frame": frames.image != null and frames.image.get_data() == last_frame.image.get_data(),
		"connected": sidecar.is_connected_to_sidecar(),
	}
	return ""
