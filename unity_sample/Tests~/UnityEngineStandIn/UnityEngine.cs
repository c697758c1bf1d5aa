// A minimal stand-in for the UnityEngine types the npcface components use, written for the
// tests: same namespaces, names and signatures as Unity's (checked against the Unity 2021-6000
// scripting reference), so a component that compiles here compiles in Unity. Bodies are simple
// working versions (a blendshape weight is stored, a quaternion rotates) so the test harness can
// run the components; the harness's own controls are internal (see StandIn below).
using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("ComponentCheck")]

namespace UnityEngine
{
    public class Object
    {
        public string name { get; set; }

        public static void Destroy(Object obj) { var go = obj as GameObject; if (go != null) go.SetActive(false); }

        public static T FindObjectOfType<T>() where T : Object
        {
            foreach (Component component in StandIn.Components)
                if (component is T && component.gameObject.activeInHierarchy)
                    return (T)(object)component;
            return null;
        }

        public override string ToString() { return name; }
    }

    public sealed class GameObject : Object
    {
        readonly List<Component> components = new List<Component>();
        bool active = true;

        public GameObject(string name)
        {
            this.name = name;
            transform = new Transform();
            Attach(transform);
        }

        public Transform transform { get; private set; }
        public bool activeSelf { get { return active; } }
        public bool activeInHierarchy { get { return active && (transform.parent == null || transform.parent.gameObject.activeInHierarchy); } }

        public T AddComponent<T>() where T : Component
        {
            var component = (T)Activator.CreateInstance(typeof(T), true);
            Attach(component);
            StandIn.Components.Add(component);
            foreach (object required in typeof(T).GetCustomAttributes(typeof(RequireComponent), true))
            {
                Type type = ((RequireComponent)required).m_Type0;
                if (GetComponent(type) == null)
                {
                    var extra = (Component)Activator.CreateInstance(type, true);
                    Attach(extra);
                    StandIn.Components.Add(extra);
                }
            }
            if (activeInHierarchy)
                StandIn.Awaken(component);
            return component;
        }

        public T GetComponent<T>() { return (T)(object)GetComponent(typeof(T)); }

        public Component GetComponent(Type type)
        {
            foreach (Component component in components)
                if (type.IsInstanceOfType(component))
                    return component;
            return null;
        }

        public void SetActive(bool value)
        {
            bool was = activeInHierarchy;
            active = value;
            if (!was && activeInHierarchy)
                foreach (Component component in components)
                    StandIn.Awaken(component);
            else if (was && !activeInHierarchy)
                foreach (Component component in components)
                    StandIn.Call(component, "OnDisable");
        }

        internal List<Component> Components { get { return components; } }

        void Attach(Component component)
        {
            component.gameObject = this;
            component.name = name;
            components.Add(component);
        }
    }

    public class Component : Object
    {
        public GameObject gameObject { get; internal set; }
        public Transform transform { get { return gameObject.transform; } }

        public T GetComponent<T>() { return gameObject.GetComponent<T>(); }

        public T GetComponentInParent<T>()
        {
            for (Transform t = transform; t != null; t = t.parent)
            {
                T found = t.gameObject.GetComponent<T>();
                if (found != null)
                    return found;
            }
            return default(T);
        }

        public T GetComponentInChildren<T>()
        {
            T[] all = GetComponentsInChildren<T>();
            return all.Length > 0 ? all[0] : default(T);
        }

        public T[] GetComponentsInChildren<T>()
        {
            var found = new List<T>();
            Collect(transform, found);
            return found.ToArray();
        }

        static void Collect<T>(Transform root, List<T> found)
        {
            foreach (Component component in root.gameObject.Components)
                if (component is T)
                    found.Add((T)(object)component);
            foreach (Transform child in root.Children)
                Collect(child, found);
        }
    }

    public class Behaviour : Component
    {
        public bool enabled { get; set; } = true;
        public bool isActiveAndEnabled { get { return enabled && gameObject.activeInHierarchy; } }
    }

    public class MonoBehaviour : Behaviour { }

    public class ScriptableObject : Object
    {
        public static T CreateInstance<T>() where T : ScriptableObject { return (T)Activator.CreateInstance(typeof(T), true); }
    }

    public class Transform : Component
    {
        Transform parentTransform;
        internal readonly List<Transform> Children = new List<Transform>();

        public Quaternion localRotation { get; set; } = Quaternion.identity;
        public Vector3 localPosition { get; set; }

        public Transform parent
        {
            get { return parentTransform; }
            set
            {
                if (parentTransform != null) parentTransform.Children.Remove(this);
                parentTransform = value;
                if (value != null) value.Children.Add(this);
            }
        }

        public Quaternion rotation
        {
            get { return parent != null ? parent.rotation * localRotation : localRotation; }
            set { localRotation = parent != null ? Quaternion.Inverse(parent.rotation) * value : value; }
        }
    }

    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
        public static Vector3 forward { get { return new Vector3(0f, 0f, 1f); } }
        public static Vector3 up { get { return new Vector3(0f, 1f, 0f); } }
        public static Vector3 zero { get { return new Vector3(0f, 0f, 0f); } }
        public override string ToString() { return string.Format("({0:F3}, {1:F3}, {2:F3})", x, y, z); }
    }

    public struct Quaternion
    {
        public float x, y, z, w;
        public Quaternion(float x, float y, float z, float w) { this.x = x; this.y = y; this.z = z; this.w = w; }
        public static Quaternion identity { get { return new Quaternion(0f, 0f, 0f, 1f); } }

        // Unity's order: rotate about Z, then X, then Y (world axes).
        public static Quaternion Euler(float x, float y, float z)
        {
            return Axis(0f, 1f, 0f, y) * Axis(1f, 0f, 0f, x) * Axis(0f, 0f, 1f, z);
        }

        public static Quaternion Inverse(Quaternion q) { return new Quaternion(-q.x, -q.y, -q.z, q.w); }

        public static Quaternion operator *(Quaternion a, Quaternion b)
        {
            return new Quaternion(
                a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
                a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
                a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w,
                a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z);
        }

        public static Vector3 operator *(Quaternion q, Vector3 v)
        {
            Quaternion r = q * new Quaternion(v.x, v.y, v.z, 0f) * Inverse(q);
            return new Vector3(r.x, r.y, r.z);
        }

        // Left-handed: a positive angle turns clockwise looking along the axis.
        static Quaternion Axis(float ax, float ay, float az, float degrees)
        {
            double half = degrees * Math.PI / 360.0;
            float s = (float)Math.Sin(half);
            return new Quaternion(ax * s, ay * s, az * s, (float)Math.Cos(half));
        }
    }

    public struct Rect
    {
        public float x, y, width, height;
        public Rect(float x, float y, float width, float height) { this.x = x; this.y = y; this.width = width; this.height = height; }
    }

    public static class Mathf
    {
        public static float Clamp01(float value) { return value < 0f ? 0f : value > 1f ? 1f : value; }
        public static float Clamp(float value, float min, float max) { return value < min ? min : value > max ? max : value; }
    }

    public static class Random
    {
        static readonly System.Random generator = new System.Random(0);
        public static float Range(float minInclusive, float maxInclusive) { return minInclusive + (float)generator.NextDouble() * (maxInclusive - minInclusive); }
    }

    public static class Debug
    {
        public static void Log(object message) { StandIn.Logs.Add("log: " + message); }
        public static void Log(object message, Object context) { Log(message); }
        public static void LogWarning(object message) { StandIn.Logs.Add("warning: " + message); }
        public static void LogWarning(object message, Object context) { LogWarning(message); }
        public static void LogError(object message) { StandIn.Logs.Add("error: " + message); }
        public static void LogError(object message, Object context) { LogError(message); }
    }

    public static class Time
    {
        public static float realtimeSinceStartup { get { return (float)StandIn.Clock.Elapsed.TotalSeconds; } }
    }

    public sealed class AudioSettings
    {
        public static double dspTime { get { return StandIn.DspTime; } }
    }

    public sealed class AudioClip : Object
    {
        float[] data;
        public int samples { get; private set; }
        public int channels { get; private set; }
        public int frequency { get; private set; }
        public float length { get { return samples / (float)frequency; } }

        public static AudioClip Create(string name, int lengthSamples, int channels, int frequency, bool stream)
        {
            return new AudioClip { name = name, samples = lengthSamples, channels = channels, frequency = frequency, data = new float[lengthSamples * channels] };
        }

        public bool GetData(float[] data, int offsetSamples)
        {
            Array.Copy(this.data, offsetSamples * channels, data, 0, Math.Min(data.Length, this.data.Length - offsetSamples * channels));
            return true;
        }

        public bool SetData(float[] data, int offsetSamples)
        {
            Array.Copy(data, 0, this.data, offsetSamples * channels, Math.Min(data.Length, this.data.Length - offsetSamples * channels));
            return true;
        }
    }

    public sealed class AudioSource : Behaviour
    {
        public AudioClip clip { get; set; }
        public bool isPlaying { get; private set; }
        internal double ScheduledAt = -1;

        public void Play() { PlayScheduled(AudioSettings.dspTime); }
        public void PlayScheduled(double time) { ScheduledAt = time; isPlaying = true; }
        public void Stop() { isPlaying = false; }
    }

    public sealed class TextAsset : Object
    {
        internal byte[] Data = new byte[0];
        public byte[] bytes { get { return Data; } }
    }

    public sealed class Mesh : Object
    {
        readonly List<string> shapes = new List<string>();
        public int blendShapeCount { get { return shapes.Count; } }
        public string GetBlendShapeName(int shapeIndex) { return shapes[shapeIndex]; }
        public int GetBlendShapeIndex(string blendShapeName) { return shapes.IndexOf(blendShapeName); }
        public void AddBlendShapeFrame(string shapeName, float frameWeight, Vector3[] deltaVertices, Vector3[] deltaNormals, Vector3[] deltaTangents) { shapes.Add(shapeName); }
    }

    public class Renderer : Component
    {
        Material instance;
        public Material material { get { return instance ?? (instance = new Material()); } set { instance = value; } }
    }

    public sealed class SkinnedMeshRenderer : Renderer
    {
        readonly Dictionary<int, float> weights = new Dictionary<int, float>();
        public Mesh sharedMesh { get; set; }
        public void SetBlendShapeWeight(int index, float value) { weights[index] = value; }
        public float GetBlendShapeWeight(int index) { float value; return weights.TryGetValue(index, out value) ? value : 0f; }
    }

    public class Material : Object
    {
        public Texture mainTexture { get; set; }
    }

    public class Texture : Object
    {
        public virtual int width { get; set; }
        public virtual int height { get; set; }
    }

    public enum TextureFormat { RGB24 = 3, RGBA32 = 4 }

    public sealed class Texture2D : Texture
    {
        internal byte[] Raw;
        internal int ApplyCount;

        public Texture2D(int width, int height, TextureFormat textureFormat, bool mipChain)
        {
            this.width = width;
            this.height = height;
            format = textureFormat;
        }

        public TextureFormat format { get; private set; }

        public void LoadRawTextureData(byte[] data)
        {
            int expected = width * height * (format == TextureFormat.RGBA32 ? 4 : 3);
            if (data.Length < expected)
                throw new ArgumentException("LoadRawTextureData: not enough data provided (will result in overread).");
            Raw = (byte[])data.Clone();
        }

        public void Apply(bool updateMipmaps = true, bool makeNoLongerReadable = false) { ApplyCount++; }
        public byte[] GetRawTextureData() { return Raw; }
    }

    public static class ImageConversion
    {
        public static bool LoadImage(this Texture2D tex, byte[] data) { return LoadImage(tex, data, false); }
        public static bool LoadImage(this Texture2D tex, byte[] data, bool markNonReadable) { tex.ApplyCount++; return data.Length > 0; }
    }

    public enum HumanBodyBones { Hips = 0, Neck = 9, Head = 10, LeftEye = 21, RightEye = 22, Jaw = 23 }

    public sealed class Animator : Behaviour
    {
        public bool isHuman { get { return false; } }
        public Transform GetBoneTransform(HumanBodyBones humanBoneId) { return null; }
    }

    [AttributeUsage(AttributeTargets.Field)] public sealed class SerializeField : Attribute { }
    [AttributeUsage(AttributeTargets.Field)] public sealed class HideInInspector : Attribute { }
    [AttributeUsage(AttributeTargets.Field)] public class PropertyAttribute : Attribute { }

    public sealed class TooltipAttribute : PropertyAttribute
    {
        public readonly string tooltip;
        public TooltipAttribute(string tooltip) { this.tooltip = tooltip; }
    }

    public sealed class HeaderAttribute : PropertyAttribute
    {
        public readonly string header;
        public HeaderAttribute(string header) { this.header = header; }
    }

    public sealed class RangeAttribute : PropertyAttribute
    {
        public readonly float min, max;
        public RangeAttribute(float min, float max) { this.min = min; this.max = max; }
    }

    public sealed class TextAreaAttribute : PropertyAttribute
    {
        public TextAreaAttribute() { }
        public TextAreaAttribute(int minLines, int maxLines) { }
    }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class CreateAssetMenuAttribute : Attribute
    {
        public string menuName { get; set; }
        public string fileName { get; set; }
        public int order { get; set; }
    }

    [AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
    public sealed class RequireComponent : Attribute
    {
        public Type m_Type0;
        public RequireComponent(Type requiredComponent) { m_Type0 = requiredComponent; }
    }

    [AttributeUsage(AttributeTargets.Class)] public sealed class DisallowMultipleComponent : Attribute { }

    [AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
    public sealed class ContextMenu : Attribute
    {
        public ContextMenu(string itemName) { }
    }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class DefaultExecutionOrder : Attribute
    {
        public DefaultExecutionOrder(int order) { this.order = order; }
        public int order { get; private set; }
    }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class AddComponentMenu : Attribute
    {
        public AddComponentMenu(string menuName) { }
    }

    /// <summary>The test harness's controls (not Unity API: internal, visible to ComponentCheck only).</summary>
    internal static class StandIn
    {
        internal static readonly List<Component> Components = new List<Component>();
        internal static readonly HashSet<Component> Started = new HashSet<Component>();
        internal static readonly List<string> Logs = new List<string>();
        internal static readonly System.Diagnostics.Stopwatch Clock = System.Diagnostics.Stopwatch.StartNew();
        internal static double DspTime = 0.0;  // the harness advances it

        internal static void Awaken(Component component)
        {
            Call(component, "Awake");
            Call(component, "OnEnable");
        }

        /// <summary>One player-loop frame: Start (once), then every Update, then every LateUpdate.</summary>
        internal static void RunFrame()
        {
            // Unity's order: DefaultExecutionOrder first, then (here) creation order; OrderBy is stable.
            List<Component> live = Components.Where(c => c is Behaviour && ((Behaviour)c).isActiveAndEnabled).OrderBy(Order).ToList();
            foreach (Component c in live)
                if (Started.Add(c))
                    Call(c, "Start");
            foreach (Component c in live)
                Call(c, "Update");
            foreach (Component c in live)
                Call(c, "LateUpdate");
        }

        static int Order(Component component)
        {
            object[] found = component.GetType().GetCustomAttributes(typeof(DefaultExecutionOrder), true);
            return found.Length > 0 ? ((DefaultExecutionOrder)found[0]).order : 0;
        }

        internal static void Call(Component component, string method)
        {
            MethodInfo info = component.GetType().GetMethod(method, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
            if (info == null)
                return;
            try
            {
                info.Invoke(component, null);
            }
            catch (TargetInvocationException e)
            {
                // Unity logs an exception in a message and carries on with the next component.
                Logs.Add("exception: " + component.GetType().Name + "." + method + ": " + e.InnerException);
            }
        }
    }
}

namespace UnityEngine.UI
{
    public class RawImage : MonoBehaviour
    {
        public Texture texture { get; set; }
        public Rect uvRect { get; set; }
    }
}
