# npcface Godot addon demo. MIT License, (c) the npcface authors.
#
# A stand-in head built in code: a sphere with eyes-and-mouth blend shapes named like ARKit's
# (JawOpen, MouthSmileLeft/Right, EyeBlinkLeft/Right, MouthPucker), so the demo and the tests
# need no imported model. The face looks down +Z.
extends RefCounted

const SHAPES := ["JawOpen", "MouthSmileLeft", "MouthSmileRight", "EyeBlinkLeft", "EyeBlinkRight", "MouthPucker"]


## `rename`: ARKit name -> the name the shape gets instead (to stand in for a rig named otherwise).
static func build(rename := {}) -> ArrayMesh:
	var sphere := SphereMesh.new()
	sphere.radius = 0.1
	sphere.height = 0.24
	sphere.radial_segments = 32
	sphere.rings = 24
	var arrays := sphere.get_mesh_arrays()
	var base: PackedVector3Array = arrays[Mesh.ARRAY_VERTEX]
	var mesh := ArrayMesh.new()
	var blend_arrays := []
	for shape in SHAPES:
		mesh.add_blend_shape(rename.get(shape, shape))
		var moved := PackedVector3Array(base)
		for i in moved.size():
			moved[i] += _offset(shape, base[i])
		var shape_arrays := []
		shape_arrays.resize(Mesh.ARRAY_MAX)
		shape_arrays[Mesh.ARRAY_VERTEX] = moved
		shape_arrays[Mesh.ARRAY_NORMAL] = arrays[Mesh.ARRAY_NORMAL]
		shape_arrays[Mesh.ARRAY_TANGENT] = arrays[Mesh.ARRAY_TANGENT]
		blend_arrays.append(shape_arrays)
	mesh.add_surface_from_arrays(Mesh.PRIMITIVE_TRIANGLES, arrays, blend_arrays)
	return mesh


## How far a vertex at `p` moves at full weight of `shape` (front of the face: z > 0).
static func _offset(shape: String, p: Vector3) -> Vector3:
	if p.z <= 0.0:
		return Vector3.ZERO
	var mouth := exp(-((p.x / 0.04) ** 2) - (((p.y + 0.05) / 0.025) ** 2))
	var eye_left := exp(-(((p.x - 0.035) / 0.02) ** 2) - (((p.y - 0.03) / 0.02) ** 2))
	var eye_right := exp(-(((p.x + 0.035) / 0.02) ** 2) - (((p.y - 0.03) / 0.02) ** 2))
	match shape:
		"JawOpen":
			return Vector3(0, -0.04, 0) * mouth * (1.0 if p.y < -0.05 else 0.3)
		"MouthSmileLeft":
			return Vector3(0.01, 0.015, 0) * mouth * (1.0 if p.x > 0 else 0.0)
		"MouthSmileRight":
			return Vector3(-0.01, 0.015, 0) * mouth * (1.0 if p.x < 0 else 0.0)
		"EyeBlinkLeft":
			return Vector3(0, -0.01, -0.005) * eye_left
		"EyeBlinkRight":
			return Vector3(0, -0.01, -0.005) * eye_right
		"MouthPucker":
			return Vector3(-p.x * 0.3, 0, 0.02) * mouth
	return Vector3.ZERO
