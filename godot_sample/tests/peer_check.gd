# npcface Godot addon. MIT License, (c) the npcface authors.
#
# Checks the addon's msgpack and ZMTP against real peers (msgpack-python, pyzmq sockets), driven
# by tests/test_godot_addon.py:
#   ... -s res://tests/peer_check.gd -- msgpack-encode OUT | msgpack-roundtrip IN OUT
#                                      | connect PORT | echo PORT
# Prints key=value lines for pytest to check.
extends SceneTree

const WAIT_MS := 20000


func _initialize() -> void:
	Engine.max_fps = 500
	_main.call_deferred(OS.get_cmdline_user_args())


func _main(args: PackedStringArray) -> void:
	match args[0]:
		"msgpack-encode":
			_write(args[1], NpcfaceMsgpack.encode(_sample()))
			print("encoded=ok")
		"msgpack-roundtrip":
			var decoded := NpcfaceMsgpack.decode(FileAccess.get_file_as_bytes(args[1]))
			if decoded.has("error"):
				print("msgpack_error=", decoded.error)
			else:
				_write(args[2], NpcfaceMsgpack.encode(decoded.value))
				print("roundtrip=ok")
		"connect":
			var dealer := await _connected(int(args[1]))
			print("peer_socket_type=", dealer.peer_socket_type)
			print("zmtp_error=", dealer.error)
		"echo":
			await _echo(int(args[1]))
	quit(0)


func _sample() -> Dictionary:
	var ints := [0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296,
		9223372036854775807, -1, -32, -33, -128, -129, -32768, -32769, -2147483648,
		-2147483649, -9223372036854775807 - 1]
	var map_20 := {}
	for i in 20:
		map_20["k%d" % i] = i
	var nils := []
	nils.resize(16)
	var zeros := []
	zeros.resize(70000)
	zeros.fill(0.0)
	var bin_300 := PackedByteArray()
	bin_300.resize(300)
	return {
		"ints": ints, "f64": 1.0 / 3.0, "nil": null, "yes": true, "no": false,
		"short_str": "héllo", "str_255": "a".repeat(255), "str_65536": "b".repeat(65536),
		"bin_300": bin_300, "array_16": nils, "array_70000": zeros, "map_20": map_20,
	}


func _write(path: String, bytes: PackedByteArray) -> void:
	var file := FileAccess.open(path, FileAccess.WRITE)
	file.store_buffer(bytes)
	file.close()


func _connected(port: int) -> NpcfaceZmtpDealer:
	var dealer := NpcfaceZmtpDealer.new()
	dealer.connect_to("127.0.0.1", port, 3.0)
	var deadline := Time.get_ticks_msec() + WAIT_MS
	while dealer.state < NpcfaceZmtpDealer.State.READY and Time.get_ticks_msec() < deadline:
		dealer.poll()
		await process_frame
	return dealer


func _echo(port: int) -> void:
	var dealer := await _connected(port)
	print("peer_socket_type=", dealer.peer_socket_type, "\npeer_minor_version=", dealer.peer_minor_version)
	var big := PackedByteArray()
	big.resize(1 << 20)
	for i in big.size():
		big[i] = i % 253
	var messages := [
		[PackedByteArray()],
		["hi".to_utf8_buffer()],
		["x".repeat(255).to_utf8_buffer()],
		["y".repeat(256).to_utf8_buffer()],
		[NpcfaceMsgpack.encode({"type": "ping"}), PackedByteArray([1, 2]), PackedByteArray()],
		[big],
	]
	var matched := 0
	for message in messages:
		dealer.send(message)
		var got := []
		var deadline := Time.get_ticks_msec() + WAIT_MS
		while got.is_empty() and Time.get_ticks_msec() < deadline and dealer.is_ready():
			got = dealer.poll()
			await process_frame
		if got.size() == 1 and got[0] == message:
			matched += 1
	print("echo_matched=%d/%d" % [matched, messages.size()])
	dealer.send_ping()
	var deadline := Time.get_ticks_msec() + WAIT_MS
	while dealer.pongs_received == 0 and Time.get_ticks_msec() < deadline:
		dealer.poll()
		await process_frame
	print("pongs=", dealer.pongs_received)
	print("zmtp_error=", dealer.error)
