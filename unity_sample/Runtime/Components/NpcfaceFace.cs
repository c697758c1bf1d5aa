// One talking face = one sidecar session. Opens itself when the sidecar is ready (uploading the
// avatar first when frames are wanted), collects the line's ticks and frames, and each Update
// samples the face at the line's playback time (AudioSettings.dspTime since BeginLine) into Pose
// and CurrentFrame, which the appliers read in LateUpdate.
using System;
using System.Collections.Generic;
using Npcface.Client;
using UnityEngine;

namespace Npcface.Unity
{
    [DisallowMultipleComponent]
    [DefaultExecutionOrder(-50)]  // samples the pose before other scripts' Update read it
    [AddComponentMenu("npcface/Npcface Face")]
    public sealed class NpcfaceFace : MonoBehaviour
    {
        [Tooltip("The scene's sidecar connection (found in the scene when left empty).")]
        public NpcfaceSidecar sidecar;
        [Tooltip("The session name (unique per face); empty = this GameObject's name.")]
        public string sessionName = "";

        [Header("Outputs")]
        public bool latents = true;
        [Tooltip("Rendered portrait frames (needs an avatar image).")]
        public bool frames = false;
        [Tooltip("Also receive the 15 Oculus visemes per tick.")]
        public bool visemes = false;
        [Tooltip("Also receive the 11 VRM expression presets per tick.")]
        public bool vrm = false;
        [Range(1f, 120f)] public float fps = 30f;

        [Header("Portrait (frames only)")]
        [Tooltip("A PNG or JPEG portrait renamed to .bytes so Unity imports it as a TextAsset.")]
        public TextAsset avatarImage;
        public int frameWidth = 512, frameHeight = 512;
        [Tooltip("rgba8, rgb8 or jpeg")]
        public string frameFormat = "rgba8";
        [Range(1, 64)] public int frameWindow = 4;

        [Header("Motion")]
        public string language = "en-us";
        [Range(0f, 3f)] public float motionAmplitude = 1f;
        [Range(0f, 1f)] public float lookaheadSeconds = 0.12f;
        public int seed = 0;
        [Tooltip("rules or learned (protocol 1.2); empty: the sidecar's default")]
        public string motion = "";

        /// <summary>The face now (valid when HasPose).</summary>
        public readonly FacePose Pose = new FacePose();
        public bool HasPose { get; private set; }
        /// <summary>The newest received frame due at the current playback time, or null.</summary>
        public FrameMessage CurrentFrame { get; private set; }
        public bool IsOpen { get; private set; }
        public string SessionName { get { return string.IsNullOrEmpty(sessionName) ? gameObject.name : sessionName; } }
        /// <summary>Seconds on the current line's audio timeline (negative before it starts).</summary>
        public double LineTime { get { return lineStartDsp == double.MinValue ? 0.0 : AudioSettings.dspTime - lineStartDsp; } }

        public event Action<OpenedMessage> Opened;
        public event Action<TickMessage> TickReceived;
        public event Action<FrameMessage> FrameReceived;
        public event Action<LineEndMessage> LineEnded;
        public event Action<ErrorMessage> ErrorReceived;

        readonly FaceTimeline timeline = new FaceTimeline();
        readonly List<FrameMessage> frameQueue = new List<FrameMessage>();
        byte[] uploadedImage;  // set by SetAvatarImage, else avatarImage.bytes
        double lineStartDsp = double.MinValue;
        bool opening;

        void OnEnable()
        {
            if (sidecar == null)
                sidecar = FindObjectOfType<NpcfaceSidecar>();
            if (sidecar == null)
            {
                Debug.LogError("npcface: no NpcfaceSidecar in the scene; add one and assign it to " + name, this);
                return;
            }
            sidecar.Register(this);
        }

        void OnDisable()
        {
            if (sidecar == null)
                return;
            if (IsOpen && sidecar.Client != null)
                sidecar.Client.Close(SessionName);
            IsOpen = false;
            sidecar.Unregister(this);
        }

        void Update()
        {
            double time = LineTime;
            HasPose = timeline.Sample(time, Pose);
            // Show the newest frame that is due; older ones are skipped (the server drops too).
            while (frameQueue.Count > 0 && frameQueue[0].Time <= time + 0.5 / timeline.Fps)
            {
                CurrentFrame = frameQueue[0];
                frameQueue.RemoveAt(0);
            }
        }

        /// <summary>Uses these image file bytes (PNG/JPEG) as the portrait instead of avatarImage.</summary>
        public void SetAvatarImage(byte[] imageFile)
        {
            uploadedImage = imageFile;
        }

        // ------------------------------------------------------------ lines (called by game code)

        /// <summary>Starts a new line whose audio starts playing at dspStartTime.</summary>
        public void BeginLine(double dspStartTime)
        {
            lineStartDsp = dspStartTime;
            timeline.Clear();
            frameQueue.Clear();
        }

        /// <summary>Streams the next chunk of the line (interleaved samples in [-1, 1]).</summary>
        public void SendAudio(float[] samples, int offset, int count, int rate, int channels, string text = null)
        {
            if (IsOpen)
                sidecar.Client.SendAudio(SessionName, samples, offset, count, rate, channels, text);
        }

        public void EndLine()
        {
            if (IsOpen)
                sidecar.Client.EndLine(SessionName);
        }

        /// <summary>Blends toward an emotion (neutral happy sad angry surprised afraid disgusted) from now on.</summary>
        public void SetEmotion(string emotion, float intensity = 1f, float rampSeconds = 0.3f)
        {
            if (IsOpen)
                sidecar.Client.SetEmotion(SessionName, emotion, intensity, -1, rampSeconds);
        }

        /// <summary>Looks at yaw/pitch degrees relative to the camera (yaw + = the character's left).</summary>
        public void SetGaze(float yaw, float pitch)
        {
            if (IsOpen)
                sidecar.Client.SetGaze(SessionName, yaw, pitch);
        }

        /// <summary>Scales head motion (0 freezes the head, up to 3) from now on.</summary>
        public void SetMotionAmplitude(float amplitude)
        {
            if (IsOpen)
                sidecar.Client.SetControls(SessionName, amplitude, null);
        }

        // ------------------------------------------------------------ called by NpcfaceSidecar

        public void OnSidecarReady(NpcfaceSidecar ready)
        {
            if (opening || IsOpen)
                return;
            opening = true;
            byte[] image = uploadedImage ?? (avatarImage != null ? avatarImage.bytes : null);
            if (!frames)
                Open(null);
            else if (image == null)
                Fail("frames need a portrait: assign avatarImage (a .png/.jpg renamed to .bytes)");
            else
                ready.Request(ready.Client.UploadAvatar(image), reply =>
                {
                    var avatar = reply as AvatarMessage;
                    if (avatar != null)
                        Open(avatar.Avatar);
                    else
                        Fail("the sidecar refused the portrait: " + reply);
                });
        }

        public void OnSidecarLost()
        {
            IsOpen = false;
            opening = false;
        }

        public void Receive(ServerMessage message)
        {
            var tick = message as TickMessage;
            if (tick != null)
            {
                timeline.Add(tick);
                if (TickReceived != null) TickReceived(tick);
                return;
            }
            var frame = message as FrameMessage;
            if (frame != null)
            {
                // Frames arrive as early as the audio is sent ahead of playback; keep up to
                // 1.5 s of them (the oldest go first beyond that) until they are due.
                frameQueue.Add(frame);
                while (frameQueue.Count > Math.Max(2 * frameWindow, (int)(timeline.Fps * 1.5)))
                    frameQueue.RemoveAt(0);
                sidecar.Client.AckFrames(SessionName);  // taken in: return the credit at once
                if (FrameReceived != null) FrameReceived(frame);
                return;
            }
            if (message is LineEndMessage && LineEnded != null)
                LineEnded((LineEndMessage)message);
            else if (message is ErrorMessage)
            {
                Debug.LogWarning("npcface " + SessionName + ": " + message, this);
                if (ErrorReceived != null) ErrorReceived((ErrorMessage)message);
            }
        }

        void Open(string avatar)
        {
            var channels = new List<string> { "arkit" };
            if (visemes) channels.Add("visemes");
            if (vrm) channels.Add("vrm");
            var options = new SessionOptions
            {
                Latents = latents || !frames, Frames = frames, Channels = channels.ToArray(), Fps = fps,
                Avatar = avatar, FrameWidth = frameWidth, FrameHeight = frameHeight, FrameFormat = frameFormat,
                FrameWindow = frameWindow, Seed = seed, Language = language, MotionAmplitude = motionAmplitude,
                LookaheadSeconds = lookaheadSeconds, Motion = string.IsNullOrEmpty(motion) ? null : motion,
            };
            sidecar.Request(sidecar.Client.Open(SessionName, options), reply =>
            {
                var opened = reply as OpenedMessage;
                if (opened == null)
                {
                    Fail("the sidecar refused the session: " + reply);
                    return;
                }
                timeline.Fps = opened.Fps;
                IsOpen = true;
                opening = false;
                if (Opened != null) Opened(opened);
            });
        }

        void Fail(string problem)
        {
            opening = false;
            Debug.LogError("npcface " + SessionName + ": " + problem, this);
        }
    }
}
