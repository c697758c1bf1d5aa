# npcface Godot addon. MIT License, (c) the npcface authors.
#
# Heartbeats: NpcfaceClient pings when it has sent nothing for welcome.heartbeat_s, so a session
# survives a long silence; with pings turned off (the control) the server forgets the client.
#   ... -s res://tests/heartbeat.gd -- PORT SILENCE_S on|off
# Prints heartbeat_s=, pings=, reply= (the code end_line got after the silence).
extends SceneTree


func _initialize() -> void:
	Engine.max_fps = 200
	_main.call_deferred(OS.get_cmdline_user_args())


func _main(args: PackedStringArray) -> void:
	var client := NpcfaceClient.new()
	client.connect_to("127.0.0.1", int(args[0]))
	var replies := []
	client.reply_received.connect(func(m: Dictionary) -> void: replies.append(m))
	client.error_received.connect(func(m: Dictionary) -> void: replies.append(m))
	while client.welcome.is_empty() and client.dealer.is_open():
		if client.is_ready() and replies.is_empty():
			client.hello()
			replies.append({})
		client.poll()
		await process_frame
	print("heartbeat_s=", client.heartbeat_s)
	client.open_session("guard")
	if args[2] == "off":
		client.heartbeat_s = 1e9
	var pongs := 0
	var until := Time.get_ticks_msec() + int(float(args[1]) * 1000.0)
	while Time.get_ticks_msec() < until:
		client.poll()
		await process_frame
	for reply in replies:
		pongs += 1 if reply.get("type") == "pong" else 0
	replies.clear()
	var id := client.end_line("guard")
	while client.dealer.is_open() and replies.filter(func(m: Dictionary) -> bool: return m.get("id") == id).is_empty():
		client.poll()
		await process_frame
	var reply: Dictionary = replies.filter(func(m: Dictionary) -> bool: return m.get("id") == id)[0]
	print("pongs=", pongs, "\nreply=", reply.get("code", reply.get("type")))
	quit(0)
