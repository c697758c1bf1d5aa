# npcface Godot addon. MIT License, (c) the npcface authors.
#
# NpcfaceSidecar: the autoload that owns the connection to `npcface serve` (the plugin registers
# it). Faces register their sessions here; it connects on first use, polls the client every frame,
# routes ticks and frames to the face that owns the session, and after a lost connection or a
# sidecar restart reconnects by itself, says hello, re-uploads the avatars and re-opens every
# session (a line in progress is lost: the face sends it again or drops it).
# Settings (Project Settings, "npcface/sidecar/..."): host, port, reconnect_interval_s.
extends Node

signal connected(welcome: Dictionary)
signal disconnected(reason: String)
## A session (re)opened: `opened` is the server's reply.
signal session_opened(session: String, opened: Dictionary)

var host := "127.0.0.1"
var port := 5555
var reconnect_interval_s := 1.0
var client: NpcfaceClient = null
## The last welcome, {} while not connected.
var welcome := {}

var _faces := {}  # session name -> the Node that owns it (has the _npcface_* methods)
var _settings := {}  # session name -> open settings (without avatar)
var _avatar_bytes := {}  # session name -> the portrait file's bytes (frames sessions)
var _avatar_ids := {}  # sha256 of portrait bytes -> avatar id from the server
var _pending := {}  # request id -> [kind, session]
var _next_try_ms := 0
var _warned := false


func _ready() -> void:
	host = ProjectSettings.get_setting("npcface/sidecar/host", host)
	port = ProjectSettings.get_setting("npcface/sidecar/port", port)
	reconnect_interval_s = ProjectSettings.get_setting("npcface/sidecar/reconnect_interval_s", reconnect_interval_s)


func _process(_delta: float) -> void:
	poll()


## Connects unless connected or connecting (faces call this; so may the game, early).
func connect_now() -> void:
	if client != null:
		return
	client = NpcfaceClient.new()
	client.welcomed.connect(_on_welcome)
	client.reply_received.connect(_on_reply)
	client.tick_received.connect(_on_tick)
	client.frame_received.connect(_on_frame)
	client.line_ended.connect(_on_line_end)
	client.error_received.connect(_on_error)
	client.disconnected.connect(_on_disconnected)
	client.forgotten.connect(_on_forgotten)
	client.connect_to(host, port)
	_next_try_ms = Time.get_ticks_msec() + int(reconnect_interval_s * 1000.0)


func is_connected_to_sidecar() -> bool:
	return client != null and client.is_ready() and not welcome.is_empty()


## Reads the connection; also reconnects when it is time. Called from _process.
func poll() -> void:
	if client == null:
		if not _faces.is_empty() and Time.get_ticks_msec() >= _next_try_ms:
			connect_now()
		return
	var was_ready := client.is_ready()
	client.poll()
	if client != null and not was_ready and client.is_ready():
		client.hello()


## Opens (now, or once connected; again after a restart) the session `session` for `face`.
## `avatar`: the portrait file's bytes for frames sessions, else empty.
func open_session(face: Node, session: String, settings: Dictionary, avatar := PackedByteArray()) -> void:
	_faces[session] = face
	_settings[session] = settings
	if avatar.is_empty():
		_avatar_bytes.erase(session)
	else:
		_avatar_bytes[session] = avatar
	if client == null:
		connect_now()
	elif is_connected_to_sidecar():
		_open(session)


func close_session(session: String) -> void:
	if is_connected_to_sidecar() and _faces.has(session):
		client.close_session(session)
	_faces.erase(session)
	_settings.erase(session)
	_avatar_bytes.erase(session)


func _open(session: String) -> void:
	var settings: Dictionary = _settings[session].duplicate()
	if _avatar_bytes.has(session):
		var key: String = _sha256(_avatar_bytes[session])
		if not _avatar_ids.has(key):
			_pending[client.upload_avatar(_avatar_bytes[session])] = ["avatar", session]
			return  # opened when the avatar reply comes
		settings["avatar"] = _avatar_ids[key]
	_pending[client.open_session(session, settings)] = ["open", session]


func _on_welcome(message: Dictionary) -> void:
	welcome = message
	_warned = false
	_avatar_ids.clear()  # a new server may not know them: upload again (same ids, content hashes)
	_pending.clear()
	connected.emit(message)
	for session in _settings:
		_open(session)


func _on_reply(message: Dictionary) -> void:
	var request: Array = _pending.get(message.get("id", ""), [])
	if request.is_empty():
		return
	_pending.erase(message.id)
	var session: String = request[1]
	if request[0] == "avatar" and message.get("type") == "avatar":
		_avatar_ids[_sha256(_avatar_bytes.get(session, PackedByteArray()))] = message.avatar
		if _settings.has(session):
			_open(session)
	elif request[0] == "open" and message.get("type") == "opened":
		session_opened.emit(session, message)
		if _faces.has(session):
			_faces[session]._npcface_opened(message)


func _on_tick(tick: Dictionary) -> void:
	var face: Node = _faces.get(tick.get("session", ""))
	if face != null:
		face._npcface_tick(tick)


func _on_frame(frame: Dictionary, payload: PackedByteArray) -> void:
	var face: Node = _faces.get(frame.get("session", ""))
	if face != null:
		face._npcface_frame(frame, payload)
	elif client != null:
		client.frame_ack(frame.get("session", ""))  # nobody shows it: keep the window moving


func _on_line_end(line_end: Dictionary) -> void:
	var face: Node = _faces.get(line_end.get("session", ""))
	if face != null:
		face._npcface_line_end(line_end)


func _on_error(error: Dictionary) -> void:
	var request: Array = _pending.get(error.get("id", ""), [])
	_pending.erase(error.get("id", ""))
	var session: String = error.get("session", request[1] if request.size() > 1 else "")
	var face: Node = _faces.get(session)
	if face != null:
		face._npcface_error(error)
	elif error.get("code", "") != "hello_required":
		push_warning("npcface: %s: %s" % [error.get("code", "?"), error.get("message", "")])


func _on_forgotten() -> void:
	# The server no longer knows this client: hello again; the welcome re-opens the sessions.
	welcome = {}
	for session in _faces:
		_faces[session]._npcface_lost()
	client.hello()


func _on_disconnected(reason: String) -> void:
	if not _warned:
		push_warning("npcface: %s; retrying every %.1f s" % [reason, reconnect_interval_s])
		_warned = true
	welcome = {}
	client = null
	_next_try_ms = Time.get_ticks_msec() + int(reconnect_interval_s * 1000.0)
	for session in _faces:
		_faces[session]._npcface_lost()
	disconnected.emit(reason)


static func _sha256(bytes: PackedByteArray) -> String:
	var hashing := HashingContext.new()
	hashing.start(HashingContext.HASH_SHA256)
	hashing.update(bytes)
	return hashing.finish().hex_encode()
