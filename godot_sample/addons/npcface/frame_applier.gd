# npcface Godot addon. MIT License, (c) the npcface authors.
#
# NpcfaceFrameApplier: shows each applied frame of the face's "frames" output on a TextureRect or
# a Sprite2D, through one ImageTexture updated in place (a new texture only when the size or
# format changes).
@icon("res://addons/npcface/icon.svg")
class_name NpcfaceFrameApplier
extends Node

@export var face: NodePath = ^".."
## A TextureRect or a Sprite2D.
@export var target: NodePath

var texture: ImageTexture = null
var frames_shown := 0

## The last image shown (what the texture holds; headless, the dummy renderer keeps only a
## texture's first image, so read pixels here rather than through texture.get_image()).
var image: Image = null

var _target: Node = null


func _ready() -> void:
	_target = get_node_or_null(target)
	if not (_target is TextureRect or _target is Sprite2D):
		push_error("npcface: %s: `target` does not point at a TextureRect or Sprite2D" % name)
		_target = null
	var source := get_node_or_null(face)
	if source != null and source.has_signal("frame_applied"):
		source.frame_applied.connect(apply)


func apply(_frame: Dictionary, image: Image) -> void:
	show_image(image)


func show_image(shown: Image) -> void:
	image = shown
	var same := (
		texture != null
		and texture.get_size() == Vector2(shown.get_size())
		and texture.get_format() == shown.get_format()
	)
	if same:
		texture.update(shown)
	else:
		texture = ImageTexture.create_from_image(shown)
		if _target != null:
			_target.texture = texture
	frames_shown += 1
