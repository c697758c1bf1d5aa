# npcface Godot addon. MIT License, (c) the npcface authors.
#
# NpcfaceShapeMapping: how a mesh names its blend shapes. Without one, a mesh shape is driven by
# the ARKit weight of the same name, compared without case ("JawOpen", "jawOpen", "JAWOPEN").
# `names` maps an ARKit name to the mesh's shape name (VRM, Ready Player Me, a studio's own rig);
# `scales` multiplies a weight (e.g. 0.5 for a shape sculpted too strong).
@icon("res://addons/npcface/icon.svg")
class_name NpcfaceShapeMapping
extends Resource

## ARKit name -> mesh blend shape name.
@export var names: Dictionary = {}
## ARKit name -> weight multiplier (default 1).
@export var scales: Dictionary = {}
## Also bind mesh shapes whose name equals an ARKit name (ignoring case) when not in `names`.
@export var match_arkit_names := true
