// Runs the Unity components in the UnityEngine stand-in's player loop against the real sidecar:
// a scene with a sidecar, a face speaking a WAV clip, a blendshape rig, head and eye bones and a
// RawImage. Prints "key=value" lines for tests/test_unity_client.py.
//
// While the line plays, the DSP clock is simulated (a fixed step per frame), and a frame is
// checked only once the sidecar's ticks and frames for its time are in (frames at the same time
// repeat until then, like a game waiting on a stream). So every count printed is the same on an
// idle or a loaded machine; load only makes the run take longer.
//
//   mono ComponentCheck.exe scene PORT PORTRAIT WAV TEXT  |  offline PORT  |  restart PORT WAV
// "restart" prints phase=open, then expects the test to restart the sidecar on the same port.
using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using Npcface.Tools;
using Npcface.Unity;
using UnityEngine;
using UnityEngine.UI;

static class ComponentCheck
{
    static int Main(string[] args)
    {
        int port = int.Parse(args[1]);
        if (args[0] == "offline") return Offline(port);
        if (args[0] == "restart") return Restart(port, WavFile.Read(args[2]));
        return Scene(port, File.ReadAllBytes(args[2]), WavFile.Read(args[3]), args[4]);
    }

    static void Print(string key, object value) { Console.WriteLine(key + "=" + value); }

    const double WaitSeconds = 120;  // for what must happen; generous, so only a broken stack hits it
    const double FrameSeconds = 1.0 / 60;  // the simulated game's frame time while the line plays

    static NpcfaceSidecar AddSidecar(int port)
    {
        var go = new GameObject("Sidecar");
        go.SetActive(false);  // fields are set before Awake/OnEnable, as the Inspector does
        var sidecar = go.AddComponent<NpcfaceSidecar>();
        sidecar.port = port;
        go.SetActive(true);
        return sidecar;
    }

    // No sidecar listening: one clear warning, no exception, nothing opened.
    static int Offline(int port)
    {
        NpcfaceSidecar sidecar = AddSidecar(port);
        sidecar.retrySeconds = 0.1f;  // many failed attempts in the run: one warning for all of them
        var faceObject = new GameObject("Guard");
        NpcfaceFace face = faceObject.AddComponent<NpcfaceFace>();
        var clock = Stopwatch.StartNew();
        Func<int> warnings = () => StandIn.Logs.Count(l => l.StartsWith("warning:") && l.Contains("cannot connect"));
        // At least 1.5 s (about 15 retries), and until the first warning however slow the machine.
        while ((clock.ElapsedMilliseconds < 1500 || warnings() == 0) && clock.Elapsed.TotalSeconds < WaitSeconds)
        {
            StandIn.RunFrame();
            Thread.Sleep(10);
        }
        Print("face_open", face.IsOpen);
        Print("warnings", warnings());
        Print("exceptions", StandIn.Logs.Count(l => l.StartsWith("exception:")));
        return 0;
    }

    static SkinnedMeshRenderer AddSkin(GameObject parent, string name, params string[] shapes)
    {
        var holder = new GameObject(name);
        holder.transform.parent = parent.transform;
        SkinnedMeshRenderer skin = holder.AddComponent<SkinnedMeshRenderer>();
        var mesh = new Mesh();
        foreach (string shape in shapes)
            mesh.AddBlendShapeFrame(shape, 100f, null, null, null);
        skin.sharedMesh = mesh;
        return skin;
    }

    static NpcfaceAudioStreamer AddStreamer(GameObject guard, WavFile wav, string text)
    {
        var clip = AudioClip.Create("line", wav.Samples.Length / wav.Channels, wav.Channels, wav.Rate, false);
        clip.SetData(wav.Samples, 0);
        NpcfaceAudioStreamer streamer = guard.AddComponent<NpcfaceAudioStreamer>();
        streamer.clip = clip;
        streamer.text = text;
        return streamer;
    }

    // Runs player-loop frames until `done` or the timeout; false on timeout. The DSP clock follows
    // the wall clock, or (advanceDspTime false) stays where it is: frames repeat the same time.
    static bool RunUntil(Func<bool> done, double timeoutSeconds, bool advanceDspTime = true)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            if (clock.Elapsed.TotalSeconds > timeoutSeconds)
                return false;
            Thread.Sleep(advanceDspTime ? 5 : 1);
            if (advanceDspTime)
                StandIn.DspTime = StandIn.Clock.Elapsed.TotalSeconds;
            StandIn.RunFrame();
        }
        return true;
    }

    // The sidecar dies and comes back: the face notices, reconnects, re-opens and speaks again.
    static int Restart(int port, WavFile wav)
    {
        AddSidecar(port);
        var guard = new GameObject("Guard");
        guard.SetActive(false);
        NpcfaceFace face = guard.AddComponent<NpcfaceFace>();
        NpcfaceAudioStreamer streamer = AddStreamer(guard, wav, "");
        int lineEnds = 0;
        face.LineEnded += end => lineEnds++;
        guard.SetActive(true);

        Print("phase", RunUntil(() => face.IsOpen, WaitSeconds) ? "open" : "never_opened");
        Print("lost", RunUntil(() => !face.IsOpen, WaitSeconds));
        var reconnect = Stopwatch.StartNew();
        Print("reopened", RunUntil(() => face.IsOpen, WaitSeconds));
        Print("reopen_seconds", reconnect.Elapsed.TotalSeconds.ToString("F1"));
        Print("spoke", streamer.Speak());
        Print("line_ends_completed", RunUntil(() => lineEnds > 0, WaitSeconds));
        Print("errors", StandIn.Logs.Count(l => l.StartsWith("error:") || l.StartsWith("exception:")));
        foreach (string log in StandIn.Logs)
            Console.Error.WriteLine(log);
        return 0;
    }

    static int Scene(int port, byte[] portrait, WavFile wav, string text)
    {
        AddSidecar(port);

        var guard = new GameObject("Guard");
        guard.SetActive(false);
        NpcfaceFace face = guard.AddComponent<NpcfaceFace>();
        face.frames = true;
        face.visemes = true;
        face.SetAvatarImage(portrait);

        NpcfaceAudioStreamer streamer = AddStreamer(guard, wav, text);

        // A rig whose shapes use three naming styles, one custom name mapped by an asset, one viseme.
        SkinnedMeshRenderer skin = AddSkin(guard, "HeadMesh", "blendShape1.jawOpen", "EyeBlinkLeft", "Mouth_Smile_L", "Fcl_MTH_A", "viseme_PP", "Unrelated");
        Mesh mesh = skin.sharedMesh;
        var mapping = ScriptableObject.CreateInstance<NpcfaceBlendshapeMapping>();
        mapping.entries.Add(new NpcfaceBlendshapeMapping.Entry { source = "JawOpen", blendShape = "Fcl_MTH_A", scale = 0.5f });
        NpcfaceBlendshapeApplier blendshapes = guard.AddComponent<NpcfaceBlendshapeApplier>();
        blendshapes.mapping = mapping;
        blendshapes.bindVisemeShapes = true;

        // A VRoid model: its "Fcl_" shapes through the VRoid preset, driven by the vrm channel.
        face.vrm = true;
        SkinnedMeshRenderer vroidSkin = AddSkin(guard, "VRoidFace", "Fcl_MTH_A", "Fcl_EYE_Close_L", "Fcl_ALL_Joy", "JawOpen");
        Mesh vroidMesh = vroidSkin.sharedMesh;
        var vroidMapping = ScriptableObject.CreateInstance<NpcfaceBlendshapeMapping>();
        vroidMapping.FillVRoid();
        NpcfaceBlendshapeApplier vroid = vroidSkin.gameObject.AddComponent<NpcfaceBlendshapeApplier>();
        vroid.face = face;
        vroid.renderers = new[] { vroidSkin };
        vroid.mapping = vroidMapping;
        blendshapes.renderers = new[] { skin };

        var headBone = new GameObject("Head");
        headBone.transform.parent = guard.transform;
        var leftEye = new GameObject("LeftEye");
        leftEye.transform.parent = headBone.transform;
        NpcfaceHeadEyeApplier bones = guard.AddComponent<NpcfaceHeadEyeApplier>();
        bones.head = headBone.transform;
        bones.leftEye = leftEye.transform;

        var canvas = new GameObject("Portrait");
        RawImage image = canvas.AddComponent<RawImage>();
        NpcfaceFrameApplier frames = guard.AddComponent<NpcfaceFrameApplier>();
        frames.rawImage = image;

        int lineEnds = 0, ticksReceived = 0, framesReceived = 0, lastFrameIndex = -1;
        Npcface.Client.LineEndMessage lineEnd = null;
        face.LineEnded += end => { lineEnds++; lineEnd = end; };
        face.TickReceived += tick => ticksReceived++;
        face.FrameReceived += frame => { framesReceived++; lastFrameIndex = frame.Index; };
        // A window large enough that the server never drops a frame here (it holds at most the
        // ticks of the audio sent ahead): every frame arrives and is shown, an exact count.
        face.frameWindow = 32;
        guard.SetActive(true);

        bool opened = RunUntil(() => face.IsOpen, WaitSeconds);
        bool spoke = opened && streamer.Speak();
        double lineEndsAt = StandIn.DspTime + streamer.startDelaySeconds + wav.Duration;
        bool happy = false, lookedLeft = false, lookedRight = false, stalled = false;
        float jawMax = 0f, visemePPMax = 0f, vroidAaMax = 0f, vroidJoyMax = 0f;
        int mappedChecks = 0, mappedMismatches = 0, yawChecks = 0, yawWrongSide = 0, gazeLeftChecks = 0, gazeRightChecks = 0, gazeWrongSide = 0;
        int lastShown = -1, shownChanges = 0, steps = 0;
        bool flipOk = true;
        // Ready when the tick after the playback time and its frame are in (or the line is over:
        // line_end follows every tick and frame of the line).
        Func<bool> ready = () =>
        {
            if (lineEnds > 0)
                return true;
            int next = (int)Math.Floor(Math.Max(0.0, face.LineTime) * face.fps) + 1;
            return ticksReceived > next && lastFrameIndex >= next;
        };
        while (spoke && StandIn.DspTime < lineEndsAt + 0.3)
        {
            StandIn.DspTime += FrameSeconds;
            steps++;
            StandIn.RunFrame();
            if (!RunUntil(ready, WaitSeconds, advanceDspTime: false))
            {
                stalled = true;
                break;
            }
            if (!happy && face.LineTime > 1.0)
            {
                face.SetEmotion("happy", 0.9f);  // mid-line, through the component
                happy = true;
            }
            if (!lookedLeft && face.LineTime > 2.0)
            {
                face.SetGaze(25f, 0f);  // the eyes turn to the character's left, then to its right
                lookedLeft = true;
            }
            if (!lookedRight && face.LineTime > 3.0)
            {
                face.SetGaze(-25f, 0f);
                lookedRight = true;
            }
            if (face.HasPose)
            {
                float jaw = skin.GetBlendShapeWeight(mesh.GetBlendShapeIndex("blendShape1.jawOpen"));
                float mapped = skin.GetBlendShapeWeight(mesh.GetBlendShapeIndex("Fcl_MTH_A"));
                jawMax = Math.Max(jawMax, jaw);
                visemePPMax = Math.Max(visemePPMax, skin.GetBlendShapeWeight(mesh.GetBlendShapeIndex("viseme_PP")));
                vroidAaMax = Math.Max(vroidAaMax, vroidSkin.GetBlendShapeWeight(vroidMesh.GetBlendShapeIndex("Fcl_MTH_A")));
                vroidJoyMax = Math.Max(vroidJoyMax, vroidSkin.GetBlendShapeWeight(vroidMesh.GetBlendShapeIndex("Fcl_ALL_Joy")));
                mappedChecks++;
                if (Math.Abs(mapped - 0.5f * jaw) > 0.01f) mappedMismatches++;
                // yaw + = the character's left = -X for a character facing +Z.
                float yaw = face.Pose.HeadRotation[0];
                if (Math.Abs(yaw) > 1f)
                {
                    yawChecks++;
                    Vector3 forward = headBone.transform.rotation * Vector3.forward;
                    if (Math.Sign(forward.x) != -Math.Sign(yaw)) yawWrongSide++;
                }
                float eyeYaw = face.Pose.GazeLeft[0] + yaw;
                if (Math.Abs(face.Pose.GazeLeft[0]) > 1f && Math.Abs(eyeYaw) > 1f && Math.Abs(face.Pose.HeadRotation[1]) < 5f)
                {
                    if (eyeYaw > 0) gazeLeftChecks++; else gazeRightChecks++;
                    Vector3 look = leftEye.transform.rotation * Vector3.forward;
                    if (Math.Sign(look.x) != -Math.Sign(eyeYaw)) gazeWrongSide++;
                }
            }
            if (frames.ShownIndex != lastShown && face.CurrentFrame != null)
            {
                shownChanges++;
                lastShown = frames.ShownIndex;
                flipOk &= RowsFlipped(face.CurrentFrame, frames.Texture);
            }
        }
        Print("opened", opened);
        Print("steps", steps);
        Print("stalled", stalled);
        Print("spoke", spoke);
        Print("line_ends", lineEnds);
        Print("bound_shapes", blendshapes.BoundCount);
        Print("jaw_weight_max", jawMax);
        Print("viseme_pp_max", visemePPMax);
        Print("blink_bound", mesh.GetBlendShapeIndex("EyeBlinkLeft") >= 0);
        Print("mapped_checks", mappedChecks);
        Print("mapped_mismatches", mappedMismatches);
        Print("unrelated_weight", skin.GetBlendShapeWeight(mesh.GetBlendShapeIndex("Unrelated")));
        Print("vroid_bound", vroid.BoundCount);
        Print("vroid_aa_max", vroidAaMax);
        Print("vroid_joy_max", vroidJoyMax);
        Print("yaw_checks", yawChecks);
        Print("yaw_wrong_side", yawWrongSide);
        Print("gaze_left_checks", gazeLeftChecks);
        Print("gaze_right_checks", gazeRightChecks);
        Print("gaze_wrong_side", gazeWrongSide);
        Print("ticks_received", ticksReceived);
        Print("line_end_ticks", lineEnd == null ? -1 : lineEnd.Ticks);
        Print("line_end_frames_sent", lineEnd == null ? -1 : lineEnd.FramesSent);
        Print("line_end_frames_dropped", lineEnd == null ? -1 : lineEnd.FramesDropped);
        Print("frames_received", framesReceived);
        Print("frames_shown", shownChanges);
        Print("texture", frames.Texture == null ? "none" : frames.Texture.width + "x" + frames.Texture.height + " " + frames.Texture.format);
        Print("raw_image_has_texture", image.texture == frames.Texture && image.texture != null);
        Print("rows_flipped", flipOk);
        Print("audio_scheduled", guard.GetComponent<AudioSource>().isPlaying);
        Print("errors", StandIn.Logs.Count(l => l.StartsWith("error:") || l.StartsWith("exception:")));
        foreach (string log in StandIn.Logs)
            Console.Error.WriteLine(log);
        return 0;
    }

    // The texture's first row must be the frame's last row (Unity textures are bottom-up).
    static bool RowsFlipped(Npcface.Client.FrameMessage frame, Texture2D texture)
    {
        byte[] raw = texture.GetRawTextureData();
        int row = frame.Width * 4;
        for (int i = 0; i < row; i++)
            if (raw[i] != frame.Pixels[(frame.Height - 1) * row + i] || raw[(frame.Height - 1) * row + i] != frame.Pixels[i])
                return false;
        return true;
    }
}
