# npcface Godot addon demo. MIT License, (c) the npcface authors.
#
# Plays the repository's bundled line (fixtures/line_greeting.wav) on a generated blend-shape head
# (NpcfaceFace + NpcfaceBlendShapeApplier) and then on a 2D portrait rendered by the sidecar
# (NpcfaceFace + NpcfaceFrameApplier on a TextureRect). Needs `npcface serve` running (README).
# The nodes are built here so the scene file stays a one-liner; in a game, place them in the
# editor instead. Command-line overrides (after `--`): --port N, --quit-after-lines N.
extends Node3D

## The line and the portrait; relative paths are taken from the project folder.
@export var line_wav := "../fixtures/line_greeting.wav"
@export var line_text_file := "../fixtures/line_greeting.txt"
@export var portrait := "../fixtures/portrait_astronaut.png"

var head_face: NpcfaceFace
var portrait_face: NpcfaceFace
var _quit_after := -1
var _lines_done := 0


func _ready() -> void:
	var args := OS.get_cmdline_user_args()
	for i in args.size() - 1:
		if args[i] == "--port":
			NpcfaceSidecar.port = int(args[i + 1])
		elif args[i] == "--quit-after-lines":
			_quit_after = int(args[i + 1])
	_build_head()
	_build_portrait()


func _build_head() -> void:
	var camera := Camera3D.new()
	camera.position = Vector3(0, 0, 0.5)
	add_child(camera)
	var light := DirectionalLight3D.new()
	light.rotation_degrees = Vector3(-30, 20, 0)
	add_child(light)
	var head := MeshInstance3D.new()
	head.name = "Head"
	head.mesh = preload("res://demo/face_mesh.gd").build()
	head.position = Vector3(-0.12, 0, 0)
	add_child(head)
	var voice := AudioStreamPlayer.new()
	voice.name = "HeadVoice"
	add_child(voice)
	head_face = NpcfaceFace.new()
	head_face.name = "head"
	head_face.audio_player = voice.get_path()
	var applier := NpcfaceBlendShapeApplier.new()
	applier.mesh = head.get_path()
	head_face.add_child(applier)
	head_face.opened.connect(func(_o: Dictionary) -> void: _say(head_face), CONNECT_ONE_SHOT)
	head_face.line_finished.connect(_on_line_finished.bind("the generated head"))
	add_child(head_face)


func _build_portrait() -> void:
	var layer := CanvasLayer.new()
	add_child(layer)
	var rect := TextureRect.new()
	rect.position = Vector2(420, 40)
	rect.size = Vector2(256, 256)
	layer.add_child(rect)
	var voice := AudioStreamPlayer.new()
	voice.name = "PortraitVoice"
	add_child(voice)
	portrait_face = NpcfaceFace.new()
	portrait_face.name = "portrait"
	portrait_face.outputs = ["frames"]
	portrait_face.portrait_path = _path(portrait)
	portrait_face.audio_player = voice.get_path()
	var applier := NpcfaceFrameApplier.new()
	applier.target = rect.get_path()
	portrait_face.add_child(applier)
	portrait_face.face_error.connect(func(e: Dictionary) -> void: print("demo: portrait: ", e.get("message")))
	add_child(portrait_face)


func _say(face: NpcfaceFace) -> void:
	var wav := AudioStreamWAV.load_from_file(_path(line_wav))
	if wav == null:
		push_error("demo: cannot load %s" % _path(line_wav))
		return
	face.say(wav, FileAccess.get_file_as_string(_path(line_text_file)).strip_edges())


func _on_line_finished(line_end: Dictionary, who: String) -> void:
	_lines_done += 1
	print("demo: %s said the line: %d ticks, %d frames" % [who, line_end.ticks, line_end.frames_sent])
	if who == "the generated head":
		if portrait_face.is_open:
			_say(portrait_face)
		else:
			portrait_face.opened.connect(func(_o: Dictionary) -> void: _say(portrait_face), CONNECT_ONE_SHOT)
		portrait_face.line_finished.connect(_on_line_finished.bind("the portrait"), CONNECT_ONE_SHOT)
	if _quit_after > 0 and _lines_done >= _quit_after:
		get_tree().quit(0)


func _path(path: String) -> String:
	if path.begins_with("res://") or path.begins_with("/"):
		return path
	return ProjectSettings.globalize_path("res://").path_join(path).simplify_path()
