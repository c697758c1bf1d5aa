# npcface Godot addon. MIT License, (c) the npcface authors.
#
# Enabling the plugin registers the NpcfaceSidecar autoload (the connection to npcface serve).
@tool
extends EditorPlugin

const AUTOLOAD := "NpcfaceSidecar"


func _enable_plugin() -> void:
	add_autoload_singleton(AUTOLOAD, "res://addons/npcface/sidecar.gd")


func _disable_plugin() -> void:
	remove_autoload_singleton(AUTOLOAD)
