# npcface Godot addon. MIT License, (c) the npcface authors.
#
# The 52 ARKit blendshape names in the protocol's wire order (Live Link Face CSV order; note
# JawRight before JawLeft). The server also sends them in welcome.capabilities.channels.arkit.
class_name NpcfaceArkit
extends RefCounted

const NAMES: Array[String] = [
	"EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
	"EyeSquintLeft", "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight",
	"EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight", "JawForward",
	"JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthRight",
	"MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
	"MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
	"MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft",
	"MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
	"MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft",
	"BrowOuterUpRight", "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft",
	"NoseSneerRight", "TongueOut",
]


## The index of `arkit_name` in a tick's "arkit" array (-1 if it is not an ARKit name).
static func index_of(arkit_name: String) -> int:
	return NAMES.find(arkit_name)
