# npcface Godot addon. MIT License, (c) the npcface authors.
#
# The GDScript side of bench/bench_godot_client.py: asks the bench's sender for COUNT messages of
# one kind and takes them in the way the addon does in use: NpcfaceClient.poll() (ZMTP, msgpack,
# signals); frames then become an Image and go into an ImageTexture updated in place
# (NpcfaceFrameApplier). Prints received=N and seconds=S.
#   ... -s res://tests/bench_client.gd -- PORT tick|frame COUNT
extends SceneTree


func _initialize() -> void:
	Engine.max_fps = 0
	_main.call_deferred(OS.get_cmdline_user_args())


func _main(args: PackedStringArray) -> void:
	var kind := args[1]
	var count := int(args[2])
	var client := NpcfaceClient.new()
	client.connect_to("127.0.0.1", int(args[0]))
	while not client.is_ready() and client.dealer.is_open():
		client.poll()
		await process_frame
	var applier := NpcfaceFrameApplier.new()
	var taken := {"n": 0, "checksum": 0}
	client.tick_received.connect(func(tick: Dictionary) -> void:
		taken.n += 1
		taken.checksum += int(tick.arkit[17] * 1000))
	client.frame_received.connect(func(frame: Dictionary, payload: PackedByteArray) -> void:
		applier.show_image(NpcfaceFace.frame_image(frame, payload))
		taken.n += 1)
	var start := Time.get_ticks_usec()
	client.send_request({"type": "bench_go", "kind": kind, "count": count})
	while taken.n < count and client.dealer.is_open():
		client.poll()
		await process_frame
	var seconds := (Time.get_ticks_usec() - start) / 1e6
	print("received=%d\nseconds=%f\nerror=%s" % [taken.n, seconds, client.dealer.error])
	applier.free()
	quit(0)
