// Sets blendshape weights on SkinnedMeshRenderers from the face's pose every LateUpdate.
// Shapes bind by name: the mapping asset first, then ARKit names in any spelling style
// ("eyeBlinkLeft", "EyeBlinkLeft", "blendShape1.eyeBlinkLeft", "eye_blink_L"), and optionally
// Ready Player Me / Oculus viseme shapes ("viseme_PP") to the visemes channel.
using System;
using System.Collections.Generic;
using Npcface.Client;
using UnityEngine;

namespace Npcface.Unity
{
    [AddComponentMenu("npcface/Npcface Blendshape Applier")]
    public sealed class NpcfaceBlendshapeApplier : MonoBehaviour
    {
        public NpcfaceFace face;
        [Tooltip("Meshes to drive (head, teeth, beard, eyelashes...). Empty = every SkinnedMeshRenderer below this object.")]
        public SkinnedMeshRenderer[] renderers = new SkinnedMeshRenderer[0];
        [Tooltip("Optional: names for rigs that do not use ARKit names.")]
        public NpcfaceBlendshapeMapping mapping;
        [Tooltip("Also drive viseme_* shapes from the visemes channel (tick the face's visemes box). Off when the rig has ARKit mouth shapes, or the mouth moves twice.")]
        public bool bindVisemeShapes = false;
        [Range(0f, 2f)] public float weightScale = 1f;
        [Tooltip("The weight a shape has at 1.0 (Unity blendshapes usually run 0-100).")]
        public float fullWeight = 100f;

        enum Channel { Arkit, Viseme, Vrm }

        struct Binding
        {
            public SkinnedMeshRenderer renderer;
            public int shape;
            public Channel channel;
            public int index;
            public float scale;
        }

        static readonly string[] Visemes = { "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou" };
        static readonly string[] VrmPresets = { "aa", "ih", "ou", "ee", "oh", "blink", "happy", "angry", "sad", "relaxed", "surprised" };

        readonly List<Binding> bindings = new List<Binding>();

        /// <summary>How many mesh shapes are driven.</summary>
        public int BoundCount { get { return bindings.Count; } }

        void Start()
        {
            if (face == null)
                face = GetComponentInParent<NpcfaceFace>();
            if (renderers == null || renderers.Length == 0)
                renderers = GetComponentsInChildren<SkinnedMeshRenderer>();
            if (Rebind() == 0)
                Debug.LogWarning("npcface: no blendshape on " + name + " matched an ARKit name or the mapping; add a NpcfaceBlendshapeMapping", this);
        }

        void LateUpdate()
        {
            if (face == null || !face.HasPose)
                return;
            FacePose pose = face.Pose;
            foreach (Binding b in bindings)
            {
                float[] source = b.channel == Channel.Arkit ? pose.Arkit : b.channel == Channel.Viseme ? pose.Visemes : pose.Vrm;
                if (source == null || b.index >= source.Length)
                    continue;
                float weight = Mathf.Clamp01(source[b.index] * b.scale * weightScale);
                b.renderer.SetBlendShapeWeight(b.shape, weight * fullWeight);
            }
        }

        /// <summary>Finds the driven shapes again (after swapping meshes or the mapping).</summary>
        public int Rebind()
        {
            bindings.Clear();
            foreach (SkinnedMeshRenderer renderer in renderers)
            {
                if (renderer == null || renderer.sharedMesh == null)
                    continue;
                Mesh mesh = renderer.sharedMesh;
                for (int shape = 0; shape < mesh.blendShapeCount; shape++)
                {
                    Binding binding;
                    if (TryBind(mesh.GetBlendShapeName(shape), out binding))
                    {
                        binding.renderer = renderer;
                        binding.shape = shape;
                        bindings.Add(binding);
                    }
                }
            }
            return bindings.Count;
        }

        bool TryBind(string shapeName, out Binding binding)
        {
            binding = new Binding { scale = 1f };
            NpcfaceBlendshapeMapping.Entry entry = mapping != null ? mapping.Find(shapeName) : null;
            if (entry != null)
            {
                binding.scale = entry.scale;
                return ParseSource(entry.source, ref binding);
            }
            if (mapping != null && !mapping.matchOthersByName)
                return false;
            string key = Normalize(shapeName);
            if (bindVisemeShapes && key.StartsWith("viseme"))
                return ParseSource("viseme:" + RpmViseme(key.Substring("viseme".Length)), ref binding);
            for (int i = 0; i < Arkit.Names.Length; i++)
                if (Normalize(Arkit.Names[i]) == key)
                {
                    binding.channel = Channel.Arkit;
                    binding.index = i;
                    return true;
                }
            return false;
        }

        static bool ParseSource(string source, ref Binding binding)
        {
            if (source.StartsWith("viseme:"))
            {
                binding.channel = Channel.Viseme;
                binding.index = IndexIgnoringCase(Visemes, source.Substring(7));
            }
            else if (source.StartsWith("vrm:"))
            {
                binding.channel = Channel.Vrm;
                binding.index = IndexIgnoringCase(VrmPresets, source.Substring(4));
            }
            else
            {
                binding.channel = Channel.Arkit;
                binding.index = IndexIgnoringCase(Arkit.Names, source);
            }
            return binding.index >= 0;
        }

        static int IndexIgnoringCase(string[] names, string name)
        {
            for (int i = 0; i < names.Length; i++)
                if (string.Equals(names[i], name, StringComparison.OrdinalIgnoreCase))
                    return i;
            return -1;
        }

        // Ready Player Me spells three Oculus visemes differently (I, O, U for ih, oh, ou).
        static string RpmViseme(string key)
        {
            return key == "i" ? "ih" : key == "o" ? "oh" : key == "u" ? "ou" : key;
        }

        /// <summary>"blendShape1.Eye_Blink_L" -> "eyeblinkleft": no prefix, case, separators or L/R short forms.</summary>
        public static string Normalize(string shapeName)
        {
            string name = shapeName.Substring(shapeName.LastIndexOf('.') + 1).ToLowerInvariant();
            if (name.EndsWith("_l") || name.EndsWith(" l")) name = name.Substring(0, name.Length - 2) + "left";
            else if (name.EndsWith("_r") || name.EndsWith(" r")) name = name.Substring(0, name.Length - 2) + "right";
            return name.Replace("_", "").Replace(" ", "").Replace("-", "");
        }
    }
}
