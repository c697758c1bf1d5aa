# npcface Godot addon. MIT License, (c) the npcface authors.
#
# A sidecar restart during play: NpcfaceSidecar must notice, reconnect, say hello and re-open the
# face's session by itself, after which the face speaks again. Driven by
# tests/test_godot_sidecar.py, which restarts `npcface serve` when this script writes "open" to
# CONFIG.phase:   ... -s res://tests/reconnect.gd -- CONFIG.json
extends SceneTree

const WAIT_MS := 120000


func _initialize() -> void:
	Engine.max_fps = 500
	_main.call_deferred(JSON.parse_string(FileAccess.get_file_as_string(OS.get_cmdline_user_args()[0])))


func _until(done: Callable) -> bool:
	var deadline := Time.get_ticks_msec() + WAIT_MS
	while not done.call():
		if Time.get_ticks_msec() > deadline:
			return false
		await process_frame
	return true


func _main(config: Dictionary) -> void:
	var results := {"opened": false, "lost": 0, "reopened": false, "spoke": false, "errors": []}
	var sidecar: Node = root.get_node("NpcfaceSidecar")
	sidecar.port = int(config.port)
	sidecar.reconnect_interval_s = 0.2
	sidecar.disconnected.connect(func(_why: String) -> void: results.lost += 1)
	var face := NpcfaceFace.new()
	face.name = "guard"
	face.idle = false
	face.face_error.connect(func(e: Dictionary) -> void: results.errors.append(e))
	root.add_child(face)
	results.opened = await _until(func() -> bool: return face.is_open)
	var first_instance: String = sidecar.welcome.get("instance", "")
	var phase := FileAccess.open(config.phase, FileAccess.WRITE)
	phase.store_string("open")
	phase.close()
	results.reopened = await _until(func() -> bool:
		return face.is_open and sidecar.welcome.get("instance", first_instance) != first_instance)
	if results.reopened:
		var wav := AudioStreamWAV.new()
		wav.format = AudioStreamWAV.FORMAT_16_BITS
		wav.mix_rate = int(config.rate)
		wav.data = FileAccess.get_file_as_bytes(config.pcm)
		face.say(wav)
		var line_end := {}
		face.line_finished.connect(func(message: Dictionary) -> void: line_end.merge(message))
		results.spoke = await _until(func() -> bool: return not line_end.is_empty())
		results["line_end"] = line_end
	var out := FileAccess.open(config.out, FileAccess.WRITE)
	out.store_string(JSON.stringify(results))
	out.close()
	quit(0)
