# npcface Godot addon. MIT License, (c) the npcface authors.
#
# NpcfaceBoneApplier: turns a Skeleton3D's head and eye bones by each applied tick's head_rotation
# and gaze_left / gaze_right (degrees; yaw + = the character's left, pitch + = up). Assumes the
# character faces +Z in the bones' rest space (Godot's usual for imported characters), so yaw is
# a turn about +Y and pitch up a turn about -X; the turn is applied on top of each bone's rest.
@icon("res://addons/npcface/icon.svg")
class_name NpcfaceBoneApplier
extends Node

@export var face: NodePath = ^".."
@export var skeleton: NodePath
@export var head_bone := "Head"
@export var left_eye_bone := "LeftEye"
@export var right_eye_bone := "RightEye"
## Scales the head's turn (0 keeps the head still).
@export_range(0.0, 2.0) var head_amount := 1.0

var _skeleton: Skeleton3D = null
var _bones := {}  # bone name -> index (bones the skeleton has)


func _ready() -> void:
	_skeleton = get_node_or_null(skeleton) as Skeleton3D
	if _skeleton == null:
		push_error("npcface: %s: `skeleton` does not point at a Skeleton3D" % name)
		return
	for bone in [head_bone, left_eye_bone, right_eye_bone]:
		var index := _skeleton.find_bone(bone)
		if index >= 0:
			_bones[bone] = index
	var source := get_node_or_null(face)
	if source != null and source.has_signal("tick_applied"):
		source.tick_applied.connect(apply)


func apply(tick: Dictionary) -> void:
	if _skeleton == null:
		return
	var head: Array = tick.get("head_rotation", [0.0, 0.0, 0.0])
	_turn(head_bone, head[0] * head_amount, head[1] * head_amount, head[2] * head_amount)
	var left: Array = tick.get("gaze_left", [0.0, 0.0])
	var right: Array = tick.get("gaze_right", [0.0, 0.0])
	_turn(left_eye_bone, left[0], left[1], 0.0)
	_turn(right_eye_bone, right[0], right[1], 0.0)


## The rotation for yaw/pitch/roll in degrees (yaw + = the character's left, pitch + = up).
static func turn(yaw: float, pitch: float, roll: float) -> Quaternion:
	var basis := Basis.from_euler(Vector3(-deg_to_rad(pitch), deg_to_rad(yaw), deg_to_rad(roll)), EULER_ORDER_YXZ)
	return basis.get_rotation_quaternion()


func _turn(bone: String, yaw: float, pitch: float, roll: float) -> void:
	if not _bones.has(bone):
		return
	var index: int = _bones[bone]
	var rest := _skeleton.get_bone_rest(index).basis.get_rotation_quaternion()
	_skeleton.set_bone_pose_rotation(index, rest * turn(yaw, pitch, roll))
