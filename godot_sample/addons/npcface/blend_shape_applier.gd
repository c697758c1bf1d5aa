# npcface Godot addon. MIT License, (c) the npcface authors.
#
# NpcfaceBlendShapeApplier: puts each applied tick's ARKit weights (the face's "arkit" channel)
# on a MeshInstance3D's blend shapes, by name (see NpcfaceShapeMapping).
@icon("res://addons/npcface/icon.svg")
class_name NpcfaceBlendShapeApplier
extends Node

## The NpcfaceFace whose ticks to apply (default: the parent).
@export var face: NodePath = ^".."
@export var mesh: NodePath
@export var mapping: NpcfaceShapeMapping

## [arkit index, mesh shape index, scale] for every bound shape.
var bindings: Array = []

var _mesh: MeshInstance3D = null


func _ready() -> void:
	_mesh = get_node_or_null(mesh) as MeshInstance3D
	if _mesh == null:
		push_error("npcface: %s: `mesh` does not point at a MeshInstance3D" % name)
		return
	bind(NpcfaceArkit.NAMES)
	var source := get_node_or_null(face)
	if source == null or not source.has_signal("tick_applied"):
		push_error("npcface: %s: `face` does not point at an NpcfaceFace" % name)
		return
	source.tick_applied.connect(apply)


## Binds the mesh's shapes to ARKit names given in wire order (welcome.capabilities.channels.arkit).
func bind(arkit_names: Array) -> void:
	bindings.clear()
	var the_mapping := mapping if mapping != null else NpcfaceShapeMapping.new()
	var by_lower := {}
	for shape in _mesh.get_blend_shape_count():
		by_lower[String(_mesh.mesh.get_blend_shape_name(shape)).to_lower()] = shape
	for i in arkit_names.size():
		var arkit: String = arkit_names[i]
		var shape := -1
		if the_mapping.names.has(arkit):
			shape = _mesh.find_blend_shape_by_name(the_mapping.names[arkit])
		elif the_mapping.match_arkit_names:
			shape = by_lower.get(arkit.to_lower(), -1)
		if shape >= 0:
			bindings.append([i, shape, float(the_mapping.scales.get(arkit, 1.0))])


func apply(tick: Dictionary) -> void:
	var weights: Array = tick.get("arkit", [])
	if weights.is_empty() or _mesh == null:
		return
	for binding in bindings:
		_mesh.set_blend_shape_value(binding[1], float(weights[binding[0]]) * binding[2])
