# npcface Godot addon. MIT License, (c) the npcface authors.
#
# The addon's unit tests, headless: msgpack round trips and malformed input, ZMTP framing.
#   bash tools/godot.sh --path godot_sample -s res://tests/unit_tests.gd
# Prints "PASS name" / "FAIL name: why" per test, then "unit_tests passed=N failed=M"; exits 1 on
# any failure. tests/test_godot_addon.py runs it.
extends SceneTree

var _passed := 0
var _failed := 0


func _initialize() -> void:
	for method in get_method_list():
		var name: String = method.name
		if name.begins_with("test_"):
			var why: Variant = call(name)
			if why == null or why == "":
				_passed += 1
				print("PASS ", name)
			else:
				_failed += 1
				print("FAIL ", name, ": ", why)
	print("unit_tests passed=%d failed=%d" % [_passed, _failed])
	quit(1 if _failed else 0)


static func _hex(text: String) -> PackedByteArray:
	return text.replace(" ", "").hex_decode()


# ---------------------------------------------------------------- msgpack


func test_msgpack_round_trips_protocol_values() -> String:
	var value := {
		"type": "tick",
		"index": 70000,
		"neg": -(2 ** 40),
		"time": 0.016666666666666666,
		"arkit": [0.0, 0.5, 1.0, 1e-30, -2.5e10],
		"nested": {"a": [1, [2, [3, {"b": null}]]]},
		"flags": [true, false],
		"empty_map": {},
		"empty_list": [],
		"unicode": "Grüße, 世界 🙂",
		"long": "x".repeat(70000),
	}
	var back := NpcfaceMsgpack.decode(NpcfaceMsgpack.encode(value))
	if back.has("error"):
		return back.error
	return "" if back.value == value else "decoded %s" % str(back.value).left(200)


func test_msgpack_ints_use_the_shortest_encoding() -> String:
	var cases := {
		0: "00", 127: "7f", 128: "cc80", 255: "ccff", 256: "cd0100", 65535: "cdffff",
		65536: "ce00010000", 4294967296: "cf0000000100000000", -1: "ff", -32: "e0",
		-33: "d0df", -128: "d080", -129: "d1ff7f", -32769: "d2ffff7fff",
		-2147483649: "d3ffffffff7fffffff",
	}
	for n in cases:
		var got := NpcfaceMsgpack.encode(n).hex_encode()
		if got != cases[n]:
			return "%d encoded as %s, want %s" % [n, got, cases[n]]
		if NpcfaceMsgpack.decode(_hex(cases[n])).get("value") != n:
			return "%s did not decode to %d" % [cases[n], n]
	return ""


func test_msgpack_reads_float32_and_every_integer_width() -> String:
	var cases := [
		["ca3fc00000", 1.5], ["cb3ff8000000000000", 1.5], ["cc05", 5], ["cd0005", 5],
		["ce00000005", 5], ["cf0000000000000005", 5], ["d0fb", -5], ["d1fffb", -5],
		["d2fffffffb", -5], ["d3fffffffffffffffb", -5], ["d90161", "a"], ["da000161", "a"],
		["db0000000161", "a"], ["dc0001c0", [null]], ["dd00000001c0", [null]],
		["de0001a161c3", {"a": true}], ["df00000001a161c2", {"a": false}],
	]
	for case in cases:
		var got := NpcfaceMsgpack.decode(_hex(case[0]))
		if got.get("value") != case[1]:
			return "%s decoded as %s, want %s" % [case[0], got, case[1]]
	return ""


func test_msgpack_bin_round_trips() -> String:
	for size in [0, 255, 256, 70000]:
		var data := PackedByteArray()
		data.resize(size)
		for i in size:
			data[i] = i % 251
		var back := NpcfaceMsgpack.decode(NpcfaceMsgpack.encode(data))
		if back.get("value") != data:
			return "bin of %d bytes did not round trip" % size
	return ""


func test_msgpack_malformed_input_gets_a_specific_error() -> String:
	var cases := {
		"": "ends in the middle",
		"c1": "never used",
		"d40100": "extension",
		"9201": "array longer than its data",
		"dd7fffffff": "array longer than its data",
		"df7fffffff": "map longer than its data",
		"c600001000616263": "ends in the middle",
		"a5616263": "ends in the middle",
		"cb3ff8": "ends in the middle",
		"810102": "keys must be strings",
		"0102": "trailing bytes",
		"cfffffffffffffffff": "above 2^63-1",
	}
	for hex in cases:
		var got := NpcfaceMsgpack.decode(_hex(hex))
		if not got.has("error") or not String(got.error).contains(cases[hex]):
			return "%s gave %s, want an error with '%s'" % [hex, got, cases[hex]]
	var deep := _hex("91".repeat(100) + "c0")
	if not String(NpcfaceMsgpack.decode(deep).get("error", "")).contains("nested deeper"):
		return "100 nested arrays were not refused"
	# Truncating a real tick anywhere gives an error, never a value.
	var tick := NpcfaceMsgpack.encode({"type": "tick", "arkit": [0.25, 0.5], "index": 3})
	for cut in tick.size():
		if not NpcfaceMsgpack.decode(tick.slice(0, cut)).has("error"):
			return "a tick cut at byte %d decoded" % cut
	return ""


# ---------------------------------------------------------------- ZMTP framing


func test_zmtp_short_long_and_multipart_frames_parse_back_byte_by_byte() -> String:
	var big := PackedByteArray()
	big.resize(256)
	big.fill(7)
	var frames := [PackedByteArray([1, 2, 3]), PackedByteArray(), big]
	var wire := NpcfaceZmtpDealer.encode_frames(frames, false)
	# 2-byte headers for short frames, 9 bytes for the 256-byte one.
	if wire.size() != 2 + 3 + 2 + 9 + 256:
		return "wire size %d" % wire.size()
	if wire[0] != NpcfaceZmtpDealer.FLAG_MORE or wire[7] != NpcfaceZmtpDealer.FLAG_LONG:
		return "flags %d %d" % [wire[0], wire[7]]
	var parser := NpcfaceZmtpDealer.FrameParser.new()
	var got := []
	for i in wire.size():  # a byte at a time, as a slow TCP stream could deliver it
		parser.feed(wire.slice(i, i + 1))
		var frame: Variant = parser.next_frame()
		if frame != null:
			got.append(frame)
	if got.size() != 3:
		return "parsed %d frames" % got.size()
	if got[0].body != frames[0] or got[1].body != frames[1] or got[2].body != big:
		return "bodies differ"
	if not got[0].more or not got[1].more or got[2].more or got[0].command:
		return "MORE flags wrong"
	return ""


func test_zmtp_commands_and_bad_frames() -> String:
	var ready := NpcfaceZmtpDealer._command_name("READY")
	ready.append_array(NpcfaceZmtpDealer._property("Socket-Type", "ROUTER".to_ascii_buffer()))
	var wire := NpcfaceZmtpDealer.encode_frames([ready], true)
	var parser := NpcfaceZmtpDealer.FrameParser.new()
	parser.feed(wire)
	var frame: Dictionary = parser.next_frame()
	if not frame.command:
		return "READY not flagged as a command"
	var parsed := NpcfaceZmtpDealer._parse_command(frame.body)
	if parsed.name != "READY" or parsed.properties.get("Socket-Type") != "ROUTER".to_ascii_buffer():
		return "READY parsed as %s" % parsed
	var bad := NpcfaceZmtpDealer.FrameParser.new()
	bad.feed(PackedByteArray([0x48, 0x54, 0x54, 0x50]))  # "HTTP"
	if bad.next_frame() != null or not bad.error.contains("out of sync"):
		return "bad flags gave '%s'" % bad.error
	var huge := NpcfaceZmtpDealer.FrameParser.new()
	huge.max_frame_bytes = 1000
	huge.feed(_hex("02 0000000000100000"))
	if huge.next_frame() != null or not huge.error.contains("over the 1000-byte limit"):
		return "oversized frame gave '%s'" % huge.error
	return ""
