// Which mesh blendshape each npcface channel drives, for rigs whose shape names are not the ARKit
// names (VRoid/VRM "Fcl_MTH_A", custom rigs, ...).
// Create one with Assets > Create > npcface > Blendshape Mapping.
using System;
using System.Collections.Generic;
using UnityEngine;

namespace Npcface.Unity
{
    [CreateAssetMenu(fileName = "NpcfaceBlendshapeMapping", menuName = "npcface/Blendshape Mapping")]
    public sealed class NpcfaceBlendshapeMapping : ScriptableObject
    {
        [Serializable]
        public sealed class Entry
        {
            [Tooltip("An ARKit name (JawOpen), \"viseme:PP\" (Oculus visemes) or \"vrm:aa\" (VRM presets).")]
            public string source = "JawOpen";
            [Tooltip("The blendshape name on the mesh, exactly as the mesh spells it.")]
            public string blendShape = "";
            [Tooltip("Multiplies the weight (e.g. 0.6 for a rig whose shape overshoots).")]
            public float scale = 1f;
        }

        public List<Entry> entries = new List<Entry>();
        [Tooltip("Shapes not listed above still bind when their name is an ARKit name in any case or prefix style.")]
        public bool matchOthersByName = true;

        /// <summary>Fills the entries for VRoid Studio models (VRM 0.x "Fcl_" face shapes). The
        /// vrm:* sources need the face's "vrm" channel ticked.</summary>
        [ContextMenu("Fill with VRoid (VRM 0.x) shape names")]
        public void FillVRoid()
        {
            entries.Clear();
            Add("vrm:aa", "Fcl_MTH_A"); Add("vrm:ih", "Fcl_MTH_I"); Add("vrm:ou", "Fcl_MTH_U");
            Add("vrm:ee", "Fcl_MTH_E"); Add("vrm:oh", "Fcl_MTH_O");
            Add("EyeBlinkLeft", "Fcl_EYE_Close_L"); Add("EyeBlinkRight", "Fcl_EYE_Close_R");
            Add("vrm:happy", "Fcl_ALL_Joy"); Add("vrm:angry", "Fcl_ALL_Angry"); Add("vrm:sad", "Fcl_ALL_Sorrow");
            Add("vrm:relaxed", "Fcl_ALL_Fun"); Add("vrm:surprised", "Fcl_ALL_Surprised");
            matchOthersByName = false;
        }

        void Add(string source, string blendShape)
        {
            entries.Add(new Entry { source = source, blendShape = blendShape, scale = 1f });
        }

        /// <summary>The entry for a mesh blendshape name, or null.</summary>
        public Entry Find(string blendShape)
        {
            foreach (Entry entry in entries)
                if (entry.blendShape == blendShape)
                    return entry;
            return null;
        }
    }
}
