// The whole npcface conversation from C#, outside Unity: hello, avatar upload, a session with
// latents and frames, a line of audio streamed in chunks, an emotion change mid-line, ticks and
// frames (acknowledged), end of line, deliberately bad requests, close.
// Prints "key=value" lines (tests/test_unity_client.py asserts on them); exit code 1 on failure.
//
//   mono ConsoleDemo.exe --port 5555 --portrait fixtures/portrait_astronaut.png \
//        --wav fixtures/line_greeting.wav --text "Well met, stranger." [--frames-out DIR] [--realtime]
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using Npcface.Client;

namespace Npcface.Tools
{
    static class ConsoleDemo
    {
        const string Session = "guard";
        // How long to wait for a reply or a line's end: generous, so a busy machine is waited for
        // and only a sidecar that never answers fails the demo.
        internal const int WaitMs = 120000;

        static int Main(string[] argv)
        {
            var args = ParseArgs(argv);
            try
            {
                return Run(args);
            }
            catch (ZmtpException e)
            {
                Console.WriteLine("failure=" + e.Message);
            }
            catch (NpcfaceRequestException e)
            {
                Console.WriteLine("failure=" + e.Message);
            }
            return 1;
        }

        static int Run(Dictionary<string, string> args)
        {
            string host = Get(args, "host", "127.0.0.1");
            int port = int.Parse(Get(args, "port", "5555"));
            double fps = double.Parse(Get(args, "fps", "30"), CultureInfo.InvariantCulture);
            WavFile wav = WavFile.Read(args["wav"]);
            if (args.ContainsKey("idle"))
                return IdleCheck(host, port, wav, double.Parse(args["idle"], CultureInfo.InvariantCulture), args.ContainsKey("no-heartbeat"));
            byte[] portrait = File.ReadAllBytes(args["portrait"]);
            string framesOut = Get(args, "frames-out", null);

            using (NpcfaceClient client = NpcfaceClient.Connect(host, port, 5000))
            {
                WelcomeMessage welcome = client.Handshake();
                Print("protocol", welcome.Protocol);
                Print("arkit_names", welcome.ArkitNames == null ? 0 : welcome.ArkitNames.Length);
                Print("jaw_open_index", welcome.ArkitNames == null ? -1 : Array.IndexOf(welcome.ArkitNames, "JawOpen"));
                bool canRender = welcome.Outputs != null && welcome.Outputs.Contains("frames");
                Print("server_frames", canRender);

                var upload = Stopwatch.StartNew();
                AvatarMessage avatar = client.WaitFor<AvatarMessage>(client.UploadAvatar(portrait), WaitMs);
                Print("avatar", avatar.Avatar);
                Print("avatar_size", avatar.Width + "x" + avatar.Height);
                Print("avatar_upload_ms", upload.ElapsedMilliseconds);
                AvatarMessage again = client.WaitFor<AvatarMessage>(client.UploadAvatar(portrait), WaitMs);
                Print("avatar_again_cached", again.Cached && again.Avatar == avatar.Avatar);

                var options = new SessionOptions
                {
                    Frames = canRender, Avatar = avatar.Avatar, Fps = fps,
                    Channels = new[] { "arkit", "visemes", "vrm" }, FrameWindow = 4, Motion = "rules",
                };
                OpenedMessage opened = client.WaitFor<OpenedMessage>(client.Open(Session, options), WaitMs);
                Print("opened_outputs", string.Join(",", opened.Outputs));
                Print("opened_motion", opened.Motion ?? "(none)");
                Print("opened_frame_size", opened.FrameWidth + "x" + opened.FrameHeight);

                var line = new LineCollector(client, framesOut, welcome.ArkitNames);
                double emotionTime = StreamLine(client, wav, Get(args, "text", null), args.ContainsKey("realtime"), line);
                LineEndMessage end = line.FinishLine(client.EndLine(Session));
                line.Report(end, wav.Duration, fps, emotionTime);
                Print("emotion_time", emotionTime);
                if (args.ContainsKey("ticks-out"))
                    line.WriteTicks(args["ticks-out"]);

                if (canRender)
                    JpegFrames(client, wav, avatar.Avatar);
                BadRequests(client, wav);

                ClosedMessage closed = client.WaitFor<ClosedMessage>(client.Close(Session), WaitMs);
                Print("closed_ticks_sent", closed.TicksSent);
                Print("failures", line.Failures);
                return line.Failures == 0 ? 0 : 1;
            }
        }

        // Opens a session, stays silent for `seconds` (heartbeats only, unless disabled), then
        // speaks a short line: the session must have survived the server's idle timeout. With
        // heartbeats, silent also until three of them were answered, however slow the machine.
        static int IdleCheck(string host, int port, WavFile wav, double seconds, bool noHeartbeat)
        {
            using (NpcfaceClient client = NpcfaceClient.Connect(host, port, 5000))
            {
                WelcomeMessage welcome = client.Handshake();
                Print("heartbeat_s", welcome.HeartbeatSeconds);
                if (noHeartbeat)
                    client.HeartbeatSeconds = 1e6;
                client.WaitFor<OpenedMessage>(client.Open("idle", new SessionOptions()), WaitMs);
                var silent = Stopwatch.StartNew();
                while (silent.Elapsed.TotalSeconds < seconds
                       || (!noHeartbeat && client.HeartbeatPongs < 3 && silent.ElapsedMilliseconds < WaitMs))
                    Thread.Sleep(10);
                client.SendAudio("idle", wav.Samples, 0, Math.Min(wav.Samples.Length, wav.Rate / 2), wav.Rate, wav.Channels);
                string end = client.EndLine("idle");
                try
                {
                    LineEndMessage line = client.WaitFor<LineEndMessage>(end, WaitMs);
                    Print("idle_session_survived", line.Ticks > 0);
                    Print("heartbeat_pongs", client.HeartbeatPongs);
                }
                catch (NpcfaceRequestException e)
                {
                    Print("idle_session_survived", false);
                    Print("idle_error", e.Code);
                }
                return 0;
            }
        }

        // Streams the line in 100 ms chunks; asks for "happy" from 40% of the line on.
        static double StreamLine(NpcfaceClient client, WavFile wav, string text, bool realtime, LineCollector line)
        {
            int chunk = wav.Rate / 10 * wav.Channels;
            double emotionTime = Math.Round(wav.Duration * 0.4, 2);
            client.SetEmotion(Session, "happy", 0.9, emotionTime, 0.2);
            var clock = Stopwatch.StartNew();
            for (int offset = 0, n = 0; offset < wav.Samples.Length; offset += chunk, n++)
            {
                int count = Math.Min(chunk, wav.Samples.Length - offset);
                client.SendAudio(Session, wav.Samples, offset, count, wav.Rate, wav.Channels, text);
                if (realtime)
                {
                    int due = (int)((n + 1) * 100 - clock.ElapsedMilliseconds);
                    if (due > 0) Thread.Sleep(due);
                }
                line.Drain();
            }
            return emotionTime;
        }

        // A frames-only session with JPEG frames: a short line, the frames are JPEG files.
        static void JpegFrames(NpcfaceClient client, WavFile wav, string avatar)
        {
            var options = new SessionOptions { Latents = false, Frames = true, Avatar = avatar, FrameFormat = "jpeg", FrameWindow = 64 };
            client.WaitFor<OpenedMessage>(client.Open("portrait", options), WaitMs);
            client.SendAudio("portrait", wav.Samples, 0, Math.Min(wav.Samples.Length, wav.Rate / 2 * wav.Channels), wav.Rate, wav.Channels);
            string end = client.EndLine("portrait");
            int jpegs = 0, ticks = 0;
            long bytes = 0;
            var clock = Stopwatch.StartNew();
            while (clock.ElapsedMilliseconds < WaitMs)
            {
                ServerMessage message;
                if (!client.TryReceive(1000, out message))
                    continue;
                var frame = message as FrameMessage;
                if (frame != null && frame.Format == "jpeg" && frame.Pixels.Length > 2 && frame.Pixels[0] == 0xFF && frame.Pixels[1] == 0xD8)
                {
                    jpegs++;
                    bytes += frame.Pixels.Length;
                    client.AckFrames("portrait");
                }
                if (message is TickMessage)
                    ticks++;
                if (message.Id == end)
                    break;
            }
            Print("jpeg_frames", jpegs);
            Print("jpeg_session_ticks", ticks);
            Print("frame_jpeg_bytes", jpegs == 0 ? 0 : bytes / jpegs);
            client.WaitFor<ClosedMessage>(client.Close("portrait"), WaitMs);
        }

        // Each bad request must get its specific error code, and the session must survive it.
        static void BadRequests(NpcfaceClient client, WavFile wav)
        {
            var badFps = new SessionOptions { Fps = 500 };
            Print("error_bad_fps", ErrorCode(client, client.Open("too-fast", badFps)));
            Print("error_unknown_emotion", ErrorCode(client, client.SetEmotion(Session, "grumpy")));
            Print("error_unknown_session", ErrorCode(client, client.EndLine("nobody")));
            byte[] pcm = Pcm.ToS16le(wav.Samples, 0, 1600);
            string outOfOrder = client.SendAudioChunk(Session, 5, wav.Rate, 1, "s16le", pcm);
            Print("error_out_of_order", ErrorCode(client, outOfOrder));
            Print("error_no_line", ErrorCode(client, client.EndLine(Session)));
            Print("error_bad_controls", ErrorCode(client, client.SetControls(Session, 7.5, null)));
            string validControls = client.SetControls(Session, 0.5, 1.2);  // valid: no reply at all
            ServerMessage stats = client.WaitFor<ServerMessage>(client.RequestStats(), WaitMs);
            Print("stats_type", stats.Type);
            Print("stats_has_sessions", stats.Raw.ContainsKey("your_sessions"));
            PongMessage pong = client.WaitFor<PongMessage>(client.Ping(), WaitMs);
            // The server answers in order: anything about the valid controls came before the pong.
            bool controlsAnswered = false;
            ServerMessage late;
            while (client.TryReceive(out late))
                controlsAnswered |= late.Id == validControls;
            Print("valid_controls_silent", !controlsAnswered);
            Print("alive_after_errors", pong.Instance == client.Welcome.Instance);
        }

        static string ErrorCode(NpcfaceClient client, string id)
        {
            try
            {
                ServerMessage reply = client.WaitFor<ServerMessage>(id, WaitMs);
                return "none:" + reply.Type;
            }
            catch (NpcfaceRequestException e)
            {
                if (e.Error != null && e.Error.Details.ContainsKey("expected_seq"))
                    return e.Code + ":expected_seq=" + e.Error.Details["expected_seq"];
                return e.Code;
            }
        }

        internal static void Print(string key, object value)
        {
            string text = value is bool ? ((bool)value ? "true" : "false")
                        : value is double ? ((double)value).ToString("R", CultureInfo.InvariantCulture)
                        : Convert.ToString(value, CultureInfo.InvariantCulture);
            Console.WriteLine(key + "=" + text);
        }

        static Dictionary<string, string> ParseArgs(string[] argv)
        {
            var args = new Dictionary<string, string>();
            for (int i = 0; i < argv.Length; i++)
            {
                if (!argv[i].StartsWith("--"))
                    continue;
                bool hasValue = i + 1 < argv.Length && !argv[i + 1].StartsWith("--");
                args[argv[i].Substring(2)] = hasValue ? argv[++i] : "";
            }
            return args;
        }

        static string Get(Dictionary<string, string> args, string key, string fallback)
        {
            string value;
            return args.TryGetValue(key, out value) ? value : fallback;
        }
    }

    /// <summary>Takes in one line's ticks and frames, acknowledging frames as they arrive.</summary>
    sealed class LineCollector
    {
        readonly NpcfaceClient client;
        readonly string framesOut;
        readonly int jawOpen, smileLeft, smileRight;  // channel indices, from welcome's names
        readonly List<TickMessage> ticks = new List<TickMessage>();
        readonly List<FrameMessage> frames = new List<FrameMessage>();
        public int Failures;

        public LineCollector(NpcfaceClient client, string framesOut, string[] arkitNames)
        {
            this.client = client;
            this.framesOut = framesOut;
            jawOpen = Array.IndexOf(arkitNames, "JawOpen");
            smileLeft = Array.IndexOf(arkitNames, "MouthSmileLeft");
            smileRight = Array.IndexOf(arkitNames, "MouthSmileRight");
        }

        public void Drain()
        {
            ServerMessage message;
            while (client.TryReceive(out message))
                Take(message);
        }

        public LineEndMessage FinishLine(string endId)
        {
            var clock = Stopwatch.StartNew();
            while (clock.ElapsedMilliseconds < ConsoleDemo.WaitMs)
            {
                ServerMessage message;
                if (!client.TryReceive(out message))
                {
                    Thread.Sleep(1);
                    continue;
                }
                if (message.Id == endId && message is LineEndMessage)
                    return (LineEndMessage)message;
                Take(message);
            }
            throw new NpcfaceRequestException("timeout", "no line_end within " + ConsoleDemo.WaitMs / 1000 + " s");
        }

        void Take(ServerMessage message)
        {
            if (message is TickMessage)
                ticks.Add((TickMessage)message);
            else if (message is FrameMessage)
            {
                var frame = (FrameMessage)message;
                frames.Add(frame);
                client.AckFrames(frame.Session);
                if (framesOut != null)
                    File.WriteAllBytes(Path.Combine(framesOut, string.Format("frame_{0:D4}.{1}", frame.Index, frame.Format)), frame.Pixels);
            }
            else
            {
                ConsoleDemo.Print("unexpected", message.Type + (message is ErrorMessage ? " " + message : ""));
                Failures++;
            }
        }

        public void Report(LineEndMessage end, double duration, double fps, double emotionTime)
        {
            ConsoleDemo.Print("audio_duration", duration);
            ConsoleDemo.Print("ticks", ticks.Count);
            ConsoleDemo.Print("line_end_ticks", end.Ticks);
            ConsoleDemo.Print("line_end_duration", end.Duration);
            bool inOrder = ticks.Select((t, i) => t.Index == i && Math.Abs(t.Time - i / fps) < 1e-6).All(ok => ok);
            ConsoleDemo.Print("ticks_in_order", inOrder);
            ConsoleDemo.Print("arkit_lengths", string.Join(",", ticks.Select(t => t.Arkit == null ? 0 : t.Arkit.Length).Distinct()));
            ConsoleDemo.Print("viseme_lengths", string.Join(",", ticks.Select(t => t.Visemes == null ? 0 : t.Visemes.Length).Distinct()));
            ConsoleDemo.Print("vrm_lengths", string.Join(",", ticks.Select(t => t.Vrm == null ? 0 : t.Vrm.Length).Distinct()));
            bool inRange = ticks.All(t => t.Arkit != null && t.Arkit.All(w => w >= 0f && w <= 1f));
            ConsoleDemo.Print("arkit_in_range", inRange);
            ConsoleDemo.Print("jaw_open_max", ticks.Max(t => t.Arkit[jawOpen]));
            double settled = emotionTime + 0.5;  // after the emotion's 0.2 s ramp
            ConsoleDemo.Print("smile_before_emotion", MeanSmile(ticks.Where(t => t.Time < emotionTime)));
            ConsoleDemo.Print("smile_after_emotion", MeanSmile(ticks.Where(t => t.Time >= settled)));
            ConsoleDemo.Print("frames", frames.Count);
            ConsoleDemo.Print("frames_sent", end.FramesSent);
            ConsoleDemo.Print("frames_dropped", end.FramesDropped);
            if (frames.Count > 0)
            {
                FrameMessage first = frames[0];
                ConsoleDemo.Print("frame_format", first.Format);
                ConsoleDemo.Print("frame_size", first.Width + "x" + first.Height);
                ConsoleDemo.Print("frame_bytes", first.Pixels.Length);
                ConsoleDemo.Print("frame_indices_increasing", frames.Select(f => f.Index).Zip(frames.Skip(1).Select(f => f.Index), (a, b) => a < b).All(ok => ok));
                ConsoleDemo.Print("frames_differ", MeanAbsDifference(frames[0].Pixels, frames[frames.Count / 2].Pixels));
            }
        }

        /// <summary>One line per tick: index, time, head yaw/pitch/roll, then the 52 ARKit weights.</summary>
        public void WriteTicks(string path)
        {
            var lines = ticks.Select(t => string.Join(",", new[] { t.Index.ToString(CultureInfo.InvariantCulture), t.Time.ToString("R", CultureInfo.InvariantCulture) }
                .Concat(t.HeadRotation.Concat(t.Arkit).Select(v => v.ToString("R", CultureInfo.InvariantCulture)))));
            File.WriteAllLines(path, lines);
        }

        double MeanSmile(IEnumerable<TickMessage> selected)
        {
            var list = selected.ToList();
            return list.Count == 0 ? double.NaN : list.Average(t => (t.Arkit[smileLeft] + t.Arkit[smileRight]) / 2.0);
        }

        static double MeanAbsDifference(byte[] a, byte[] b)
        {
            long sum = 0;
            for (int i = 0; i < a.Length; i++)
                sum += Math.Abs(a[i] - b[i]);
            return sum / (double)a.Length;
        }
    }
}
