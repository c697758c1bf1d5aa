// Which mesh blendshape each npcface channel drives, for rigs whose shape names are not the ARKit
// names (Ready Player Me's visemes, VRoid/VRM "Fcl_MTH_A", Character Creator "Mouth_Smile_L", ...).
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
