# npcface Godot addon. MIT License, (c) the npcface authors.
#
# msgpack encode/decode for the npcface protocol (bridge/PROTOCOL.md section 2), in GDScript.
# Encodes: null, bool, int (shortest width), float (float64), String, PackedByteArray (bin),
# Array, Dictionary. Decodes every msgpack type except extensions (the protocol has none); map
# keys must be strings (the protocol's maps all have string keys). Big-endian reads and writes go
# through StreamPeerBuffer so the byte work runs in the engine, not in script.
class_name NpcfaceMsgpack
extends RefCounted

## Containers nested deeper than this are refused (guards the stack against hostile input).
const MAX_DEPTH := 64


## The msgpack bytes of `value`; a value the protocol cannot carry is an error (push_error) and
## encodes as nil.
static func encode(value: Variant) -> PackedByteArray:
	var out := StreamPeerBuffer.new()
	out.big_endian = true
	_encode_into(out, value)
	return out.data_array


## Decodes one msgpack value that fills `data` exactly.
## Returns {"value": ...} or {"error": "one sentence"}.
static func decode(data: PackedByteArray) -> Dictionary:
	var reader := _Reader.new(data)
	var value: Variant = reader.read_value(0)
	if reader.error != "":
		return {"error": "not valid msgpack: " + reader.error}
	if reader.stream.get_position() != data.size():
		return {
			"error":
			(
				"not valid msgpack: %d trailing bytes after the value"
				% (data.size() - reader.stream.get_position())
			)
		}
	return {"value": value}


static func _encode_into(out: StreamPeerBuffer, value: Variant) -> void:
	match typeof(value):
		TYPE_NIL:
			out.put_u8(0xc0)
		TYPE_BOOL:
			out.put_u8(0xc3 if value else 0xc2)
		TYPE_INT:
			_encode_int(out, value)
		TYPE_FLOAT:
			out.put_u8(0xcb)
			out.put_double(value)
		TYPE_STRING, TYPE_STRING_NAME:
			var bytes: PackedByteArray = String(value).to_utf8_buffer()
			var n := bytes.size()
			if n < 32:
				out.put_u8(0xa0 | n)
			elif n < 0x100:
				out.put_u8(0xd9)
				out.put_u8(n)
			elif n < 0x10000:
				out.put_u8(0xda)
				out.put_u16(n)
			else:
				out.put_u8(0xdb)
				out.put_u32(n)
			out.put_data(bytes)
		TYPE_PACKED_BYTE_ARRAY:
			var n: int = value.size()
			if n < 0x100:
				out.put_u8(0xc4)
				out.put_u8(n)
			elif n < 0x10000:
				out.put_u8(0xc5)
				out.put_u16(n)
			else:
				out.put_u8(0xc6)
				out.put_u32(n)
			out.put_data(value)
		TYPE_ARRAY, TYPE_PACKED_FLOAT32_ARRAY, TYPE_PACKED_FLOAT64_ARRAY, TYPE_PACKED_INT32_ARRAY:
			var n: int = value.size()
			_encode_length(out, n, 0x90, 0xdc, 0xdd)
			for item in value:
				_encode_into(out, item)
		TYPE_DICTIONARY:
			var map: Dictionary = value
			_encode_length(out, map.size(), 0x80, 0xde, 0xdf)
			for key in map:
				_encode_into(out, key)
				_encode_into(out, map[key])
		_:
			push_error("npcface msgpack: cannot encode a %s" % type_string(typeof(value)))
			out.put_u8(0xc0)


static func _encode_length(out: StreamPeerBuffer, n: int, fix: int, tag16: int, tag32: int) -> void:
	if n < 16:
		out.put_u8(fix | n)
	elif n < 0x10000:
		out.put_u8(tag16)
		out.put_u16(n)
	else:
		out.put_u8(tag32)
		out.put_u32(n)


static func _encode_int(out: StreamPeerBuffer, n: int) -> void:
	if n >= 0:
		if n < 0x80:
			out.put_u8(n)
		elif n < 0x100:
			out.put_u8(0xcc)
			out.put_u8(n)
		elif n < 0x10000:
			out.put_u8(0xcd)
			out.put_u16(n)
		elif n < 0x100000000:
			out.put_u8(0xce)
			out.put_u32(n)
		else:
			out.put_u8(0xcf)
			out.put_u64(n)
	elif n >= -32:
		out.put_u8(n & 0xff)
	elif n >= -0x80:
		out.put_u8(0xd0)
		out.put_8(n)
	elif n >= -0x8000:
		out.put_u8(0xd1)
		out.put_16(n)
	elif n >= -0x80000000:
		out.put_u8(0xd2)
		out.put_32(n)
	else:
		out.put_u8(0xd3)
		out.put_64(n)


## Reads values off a StreamPeerBuffer; the first problem is kept in `error` and stops reading.
class _Reader:
	var stream := StreamPeerBuffer.new()
	var size := 0
	var error := ""

	func _init(data: PackedByteArray) -> void:
		stream.big_endian = true
		stream.data_array = data
		size = data.size()

	func _need(n: int) -> bool:
		if size - stream.get_position() < n:
			if error == "":
				error = "the data ends in the middle of a value"
			return false
		return true

	func _fail(message: String) -> Variant:
		if error == "":
			error = message
		return null

	func read_value(depth: int) -> Variant:
		if error != "" or not _need(1):
			return null
		var tag: int = stream.get_u8()
		if tag == 0xcb:  # float64 first: ticks are mostly arrays of them
			return stream.get_double() if size - stream.get_position() >= 8 else _fail("the data ends in the middle of a value")
		if tag <= 0x7f:
			return tag
		if tag >= 0xe0:
			return tag - 0x100
		if tag >= 0xa0 and tag <= 0xbf:
			return _read_string(tag & 0x1f)
		if tag >= 0x90 and tag <= 0x9f:
			return _read_array(tag & 0x0f, depth)
		if tag >= 0x80 and tag <= 0x8f:
			return _read_map(tag & 0x0f, depth)
		match tag:
			0xc0:
				return null
			0xc2:
				return false
			0xc3:
				return true
			0xca:
				return stream.get_float() if _need(4) else null
			0xcb:
				return stream.get_double() if _need(8) else null
			0xcc:
				return stream.get_u8() if _need(1) else null
			0xcd:
				return stream.get_u16() if _need(2) else null
			0xce:
				return stream.get_u32() if _need(4) else null
			0xcf:
				# GDScript ints are signed 64-bit: above 2^63-1 wraps, so refuse it.
				if not _need(8):
					return null
				var big: int = stream.get_u64()
				return big if big >= 0 else _fail("an unsigned 64-bit integer above 2^63-1")
			0xd0:
				return stream.get_8() if _need(1) else null
			0xd1:
				return stream.get_16() if _need(2) else null
			0xd2:
				return stream.get_32() if _need(4) else null
			0xd3:
				return stream.get_64() if _need(8) else null
			0xd9:
				return _read_string(stream.get_u8()) if _need(1) else null
			0xda:
				return _read_string(stream.get_u16()) if _need(2) else null
			0xdb:
				return _read_string(stream.get_u32()) if _need(4) else null
			0xc4:
				return _read_bin(stream.get_u8()) if _need(1) else null
			0xc5:
				return _read_bin(stream.get_u16()) if _need(2) else null
			0xc6:
				return _read_bin(stream.get_u32()) if _need(4) else null
			0xdc:
				return _read_array(stream.get_u16(), depth) if _need(2) else null
			0xdd:
				return _read_array(stream.get_u32(), depth) if _need(4) else null
			0xde:
				return _read_map(stream.get_u16(), depth) if _need(2) else null
			0xdf:
				return _read_map(stream.get_u32(), depth) if _need(4) else null
			0xc1:
				return _fail("byte 0xc1 is never used in msgpack")
		return _fail("extension type 0x%02x: the protocol uses no msgpack extensions" % tag)

	func _read_string(n: int) -> Variant:
		if not _need(n):
			return null
		return stream.get_utf8_string(n)

	func _read_bin(n: int) -> Variant:
		if not _need(n):
			return null
		var got: Array = stream.get_data(n)
		return got[1]

	func _read_array(n: int, depth: int) -> Variant:
		if depth >= MAX_DEPTH:
			return _fail("containers nested deeper than %d" % MAX_DEPTH)
		# Each element takes at least one byte: a count longer than the data is refused at once.
		if size - stream.get_position() < n:
			return _fail("an array longer than its data")
		var items := []
		items.resize(n)
		for i in n:
			items[i] = read_value(depth + 1)
			if error != "":
				return null
		return items

	func _read_map(n: int, depth: int) -> Variant:
		if depth >= MAX_DEPTH:
			return _fail("containers nested deeper than %d" % MAX_DEPTH)
		if size - stream.get_position() < 2 * n:
			return _fail("a map longer than its data")
		var map := {}
		for i in n:
			var key: Variant = read_value(depth + 1)
			if error != "":
				return null
			if typeof(key) != TYPE_STRING:
				return _fail("map keys must be strings")
			map[key] = read_value(depth + 1)
			if error != "":
				return null
		return map
