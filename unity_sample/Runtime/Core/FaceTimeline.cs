// Engine-independent pieces the Unity components share: the ARKit names, a line's ticks sampled
// at playback time (interpolated between ticks), and the row flip raw frames need in Unity.
using System;
using System.Collections.Generic;

namespace Npcface.Client
{
    public static class Arkit
    {
        /// <summary>The 52 ARKit blendshapes in Live Link Face CSV order (JawRight before JawLeft),
        /// the order of tick.arkit. welcome.capabilities.channels.arkit sends the same list.</summary>
        public static readonly string[] Names =
        {
            "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
            "EyeSquintLeft", "EyeWideLeft",
            "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
            "EyeSquintRight", "EyeWideRight",
            "JawForward", "JawRight", "JawLeft", "JawOpen",
            "MouthClose", "MouthFunnel", "MouthPucker", "MouthRight", "MouthLeft",
            "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
            "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
            "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
            "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight",
            "MouthUpperUpLeft", "MouthUpperUpRight",
            "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight",
            "CheekPuff", "CheekSquintLeft", "CheekSquintRight",
            "NoseSneerLeft", "NoseSneerRight", "TongueOut",
        };
    }

    /// <summary>The face at one instant, as the appliers read it.</summary>
    public sealed class FacePose
    {
        public readonly float[] Arkit = new float[52];
        public readonly float[] HeadRotation = new float[3];     // yaw, pitch, roll degrees
        public readonly float[] HeadTranslation = new float[3];  // metres
        public readonly float[] GazeLeft = new float[2];         // yaw, pitch degrees
        public readonly float[] GazeRight = new float[2];
        public float[] Visemes;  // null unless the session asked for "visemes"
        public float[] Vrm;      // null unless the session asked for "vrm"
    }

    /// <summary>One line's ticks, sampled at a playback time with linear interpolation.</summary>
    /// <remarks>Ticks arrive in index order, possibly ahead of playback; Sample holds the last
    /// tick when playback runs past the ticks received (a late tick never rewinds the face).</remarks>
    public sealed class FaceTimeline
    {
        readonly List<TickMessage> ticks = new List<TickMessage>();
        public double Fps = 30.0;
        public int Line = -1;

        public int Count { get { return ticks.Count; } }

        /// <summary>Adds a tick; a tick of a new line starts over.</summary>
        public void Add(TickMessage tick)
        {
            if (tick.Line != Line)
            {
                ticks.Clear();
                Line = tick.Line;
            }
            if (tick.Index == ticks.Count)
                ticks.Add(tick);
        }

        public void Clear()
        {
            ticks.Clear();
            Line = -1;
        }

        /// <summary>Fills pose with the face at `time` seconds on the line; false if no tick yet.</summary>
        public bool Sample(double time, FacePose pose)
        {
            if (ticks.Count == 0)
                return false;
            double position = Math.Max(0.0, time * Fps);
            int index = (int)Math.Floor(position);
            if (index >= ticks.Count - 1)
            {
                Blend(ticks[ticks.Count - 1], ticks[ticks.Count - 1], 0f, pose);
                return true;
            }
            Blend(ticks[index], ticks[index + 1], (float)(position - index), pose);
            return true;
        }

        static void Blend(TickMessage a, TickMessage b, float t, FacePose pose)
        {
            Lerp(a.HeadRotation, b.HeadRotation, t, pose.HeadRotation);
            Lerp(a.HeadTranslation, b.HeadTranslation, t, pose.HeadTranslation);
            Lerp(a.GazeLeft, b.GazeLeft, t, pose.GazeLeft);
            Lerp(a.GazeRight, b.GazeRight, t, pose.GazeRight);
            if (a.Arkit != null && b.Arkit != null)
                Lerp(a.Arkit, b.Arkit, t, pose.Arkit);
            if (a.Visemes != null && b.Visemes != null)
                Lerp(a.Visemes, b.Visemes, t, pose.Visemes ?? (pose.Visemes = new float[a.Visemes.Length]));
            if (a.Vrm != null && b.Vrm != null)
                Lerp(a.Vrm, b.Vrm, t, pose.Vrm ?? (pose.Vrm = new float[a.Vrm.Length]));
        }

        static void Lerp(float[] a, float[] b, float t, float[] into)
        {
            int n = Math.Min(into.Length, Math.Min(a.Length, b.Length));
            for (int i = 0; i < n; i++)
                into[i] = a[i] + (b[i] - a[i]) * t;
        }
    }

    public static class FrameRows
    {
        /// <summary>Copies top-to-bottom rows (the wire order) into bottom-to-top rows (Unity's
        /// LoadRawTextureData order), or back: the operation is its own inverse.</summary>
        public static void FlipVertical(byte[] source, byte[] target, int width, int height, int bytesPerPixel)
        {
            int row = width * bytesPerPixel;
            if (source.Length < row * height || target.Length < row * height)
                throw new ArgumentException("the buffers are smaller than width x height x bytesPerPixel");
            for (int y = 0; y < height; y++)
                Buffer.BlockCopy(source, y * row, target, (height - 1 - y) * row, row);
        }
    }
}
