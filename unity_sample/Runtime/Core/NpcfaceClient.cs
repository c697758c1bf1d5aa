// The npcface sidecar client: protocol 1.0 (bridge/PROTOCOL.md) over ZmtpDealer, no UnityEngine.
//
// Threads: a reader thread receives and parses messages into a ConcurrentQueue; a writer thread
// sends queued requests (so the caller, e.g. Unity's main thread, never blocks on the socket) and
// pings the server when nothing was sent for welcome.heartbeat_s. Every request method is
// thread-safe and returns at once with the request's id. Consume replies from ONE thread, with
// TryReceive (Unity's Update) or WaitFor (setup code, console tools).
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Text;
using System.Threading;

namespace Npcface.Client
{
    /// <summary>The server answered a request with an error (or never answered).</summary>
    public sealed class NpcfaceRequestException : Exception
    {
        public readonly string Code;
        public readonly ErrorMessage Error;

        public NpcfaceRequestException(ErrorMessage error) : base(error.Code + ": " + error.Message)
        {
            Code = error.Code;
            Error = error;
        }

        public NpcfaceRequestException(string code, string message) : base(code + ": " + message) { Code = code; }
    }

    /// <summary>Settings of the `open` request (PROTOCOL.md 4.3); null fields use the server default.</summary>
    public sealed class SessionOptions
    {
        public bool Latents = true;
        public bool Frames = false;
        public string[] Channels = { "arkit" };  // any of "arkit", "visemes", "vrm"
        public double Fps = 30.0;
        public string Avatar;                     // required with Frames
        public int FrameWidth = 512, FrameHeight = 512;
        public string FrameFormat = "rgba8";      // "rgba8", "rgb8" or "jpeg"
        public int FrameWindow = 4;
        public long Seed = 0;
        public string Language = "en-us";
        public double MotionAmplitude = 1.0;
        public double HeadDistance = 1.0;
        public double LookaheadSeconds = 0.12;
        public string Motion;                     // protocol 1.2: "rules" or "learned"; null: the sidecar's default
    }

    public sealed class NpcfaceClient : IDisposable
    {
        public const string ProtocolVersion = "1.2";
        public const string ClientName = "unity-npcface/0.1";

        readonly ZmtpDealer dealer;
        readonly ConcurrentQueue<ServerMessage> inbox = new ConcurrentQueue<ServerMessage>();
        readonly SemaphoreSlim inboxCount = new SemaphoreSlim(0);
        readonly Queue<ServerMessage> setAside = new Queue<ServerMessage>();  // skipped by WaitFor
        readonly BlockingCollection<List<byte[]>> outbox = new BlockingCollection<List<byte[]>>();
        readonly Dictionary<string, int> nextSeq = new Dictionary<string, int>();
        readonly Thread reader, writer;
        readonly Stopwatch sinceLastSend = Stopwatch.StartNew();
        long requestCounter;
        volatile bool closing;
        volatile string lostReason;

        const string HeartbeatIdPrefix = "heartbeat-";

        /// <summary>Pongs received for the client's own heartbeat pings (they are not queued).</summary>
        public int HeartbeatPongs { get; private set; }
        /// <summary>Send a ping after this long without sending (set from welcome.heartbeat_s).</summary>
        public double HeartbeatSeconds = 5.0;
        /// <summary>The server's welcome, once received.</summary>
        public WelcomeMessage Welcome { get; private set; }
        /// <summary>Why the connection broke, or null while it is up.</summary>
        public string LostReason { get { return lostReason; } }

        NpcfaceClient(ZmtpDealer dealer)
        {
            this.dealer = dealer;
            reader = new Thread(ReadLoop) { IsBackground = true, Name = "npcface reader" };
            writer = new Thread(WriteLoop) { IsBackground = true, Name = "npcface writer" };
            reader.Start();
            writer.Start();
        }

        /// <summary>Opens the connection (blocking up to timeoutMs); say Hello next.</summary>
        public static NpcfaceClient Connect(string host = "127.0.0.1", int port = 5555, int timeoutMs = 5000)
        {
            return new NpcfaceClient(ZmtpDealer.Connect(host, port, timeoutMs));
        }

        // ------------------------------------------------------------ requests

        public string Hello(string clientName = ClientName)
        {
            return Post(Header("hello", "protocol", ProtocolVersion, "client", clientName));
        }

        /// <summary>Uploads a PNG/JPEG/WebP/BMP file's bytes; the reply is an AvatarMessage.</summary>
        public string UploadAvatar(byte[] imageFile, int faceIndex = -1)
        {
            var header = Header("upload_avatar");
            if (faceIndex >= 0)
                header["face_index"] = faceIndex;
            return Post(header, imageFile);
        }

        public string Open(string session, SessionOptions options)
        {
            var outputs = new List<object>();
            if (options.Latents) outputs.Add("latents");
            if (options.Frames) outputs.Add("frames");
            var header = Header("open", "session", session, "outputs", outputs,
                                "channels", new List<object>(options.Channels), "fps", options.Fps,
                                "seed", options.Seed, "language", options.Language,
                                "motion_amplitude", options.MotionAmplitude, "head_distance", options.HeadDistance,
                                "lookahead_s", options.LookaheadSeconds);
            if (options.Motion != null)
                header["motion"] = options.Motion;
            if (options.Frames)
            {
                header["avatar"] = options.Avatar;
                header["frame_size"] = new List<object> { options.FrameWidth, options.FrameHeight };
                header["frame_format"] = options.FrameFormat;
                header["frame_window"] = options.FrameWindow;
            }
            lock (nextSeq)
                nextSeq[session] = 0;
            return Post(header);
        }

        /// <summary>Sends the next chunk of the session's current line (seq is counted here).</summary>
        /// <param name="samples">Interleaved float samples in [-1, 1]; sent as s16le.</param>
        /// <param name="text">The line's text, only with the first chunk (or null).</param>
        public string SendAudio(string session, float[] samples, int offset, int count, int rate, int channels = 1, string text = null)
        {
            int seq;
            lock (nextSeq)
            {
                nextSeq.TryGetValue(session, out seq);
                nextSeq[session] = seq + 1;
            }
            return SendAudioChunk(session, seq, rate, channels, "s16le", Pcm.ToS16le(samples, offset, count), seq == 0 ? text : null);
        }

        /// <summary>One `audio` message exactly as given (explicit seq and raw PCM bytes).</summary>
        public string SendAudioChunk(string session, int seq, int rate, int channels, string format, byte[] pcm, string text = null)
        {
            var header = Header("audio", "session", session, "seq", seq, "rate", rate, "channels", channels, "format", format);
            if (text != null)
                header["text"] = text;
            return Post(header, pcm);
        }

        /// <summary>Ends the line; the reply (after the remaining ticks and frames) is a LineEndMessage.</summary>
        public string EndLine(string session)
        {
            lock (nextSeq)
                nextSeq[session] = 0;
            return Post(Header("end_line", "session", session));
        }

        /// <param name="time">Seconds on the line's audio timeline, or a negative value for "now".</param>
        public string SetEmotion(string session, string emotion, double intensity = 1.0, double time = -1, double ramp = 0.3)
        {
            return Post(Header("emotion", "session", session, "emotion", emotion, "intensity", intensity,
                               "ramp", ramp, "time", time < 0 ? null : (object)time));
        }

        public string SetGaze(string session, double yaw, double pitch, double time = -1)
        {
            return Post(Header("gaze", "session", session, "yaw", yaw, "pitch", pitch, "time", time < 0 ? null : (object)time));
        }

        /// <summary>Changes head motion and distance from `time` on (null leaves a value as it is).</summary>
        public string SetControls(string session, double? motionAmplitude, double? headDistance, double time = -1)
        {
            return Post(Header("controls", "session", session, "motion_amplitude", motionAmplitude,
                               "head_distance", headDistance, "time", time < 0 ? null : (object)time));
        }

        /// <summary>Asks for server and session counters; the reply arrives with Type "stats" (fields in Raw).</summary>
        public string RequestStats()
        {
            return Post(Header("stats"));
        }

        /// <summary>Returns frame-window credits after taking in frames (PROTOCOL.md 7.3): call it!</summary>
        public string AckFrames(string session, int count = 1)
        {
            return Post(Header("frame_ack", "session", session, "count", count));
        }

        public string Close(string session)
        {
            return Post(Header("close", "session", session));
        }

        public string Ping()
        {
            return Post(Header("ping"));
        }

        /// <summary>Sends any header map (and optional payload) as is; returns its id if it has one.</summary>
        public string Post(Dictionary<string, object> header, byte[] payload = null)
        {
            var frames = new List<byte[]> { MsgPack.Encode(header) };
            if (payload != null)
                frames.Add(payload);
            try
            {
                outbox.Add(frames);
            }
            catch (InvalidOperationException)  // Dispose has completed the outbox
            {
                throw new ObjectDisposedException("NpcfaceClient");
            }
            object id;
            header.TryGetValue("id", out id);
            return id as string;
        }

        Dictionary<string, object> Header(string type, params object[] fields)
        {
            var header = new Dictionary<string, object>();
            header["type"] = type;
            header["id"] = "u" + Interlocked.Increment(ref requestCounter).ToString();
            for (int i = 0; i + 1 < fields.Length; i += 2)
                if (fields[i + 1] != null)
                    header[(string)fields[i]] = fields[i + 1];
            return header;
        }

        // ------------------------------------------------------------ replies

        /// <summary>The next message if one is waiting (never blocks). One consumer thread only.</summary>
        public bool TryReceive(out ServerMessage message)
        {
            return TryReceive(0, out message);
        }

        /// <summary>Waits up to timeoutMs for the next message (false on timeout). One consumer thread only.</summary>
        public bool TryReceive(int timeoutMs, out ServerMessage message)
        {
            if (setAside.Count > 0)
            {
                message = setAside.Dequeue();
                return true;
            }
            return TakeFromInbox(timeoutMs, out message);
        }

        /// <summary>Waits for the reply to request `id` (other messages stay queued for TryReceive).</summary>
        /// <exception cref="NpcfaceRequestException">The server answered with an error, the connection
        /// broke, or no reply came within timeoutMs.</exception>
        public T WaitFor<T>(string id, int timeoutMs = 10000) where T : ServerMessage
        {
            var clock = Stopwatch.StartNew();
            while (true)
            {
                int left = (int)Math.Max(0, timeoutMs - clock.ElapsedMilliseconds);
                ServerMessage message;
                if (!TakeFromInbox(left, out message))
                    throw new NpcfaceRequestException("timeout", string.Format("no reply to request {0} within {1} ms", id, timeoutMs));
                var lost = message as ConnectionLostMessage;
                if (lost != null)
                {
                    setAside.Enqueue(message);
                    throw new NpcfaceRequestException("connection_lost", lost.Reason);
                }
                if (message.Id != id || message.Id == null)
                {
                    setAside.Enqueue(message);
                    continue;
                }
                var error = message as ErrorMessage;
                if (error != null)
                    throw new NpcfaceRequestException(error);
                var reply = message as T;
                if (reply == null)
                    throw new NpcfaceRequestException("protocol", string.Format("request {0} got a '{1}' reply", id, message.Type));
                if (reply is WelcomeMessage)
                {
                    Welcome = (WelcomeMessage)(object)reply;
                    if (Welcome.HeartbeatSeconds > 0)
                        HeartbeatSeconds = Welcome.HeartbeatSeconds;
                }
                return reply;
            }
        }

        /// <summary>Says hello and checks the server's protocol major version.</summary>
        public WelcomeMessage Handshake(int timeoutMs = 10000)
        {
            WelcomeMessage welcome = WaitFor<WelcomeMessage>(Hello(), timeoutMs);
            string major = welcome.Protocol.Split('.')[0];
            if (major != ProtocolVersion.Split('.')[0])
                throw new NpcfaceRequestException("version_mismatch", string.Format("the server speaks protocol {0}, this client {1}", welcome.Protocol, ProtocolVersion));
            return welcome;
        }

        /// <summary>Records a welcome received through TryReceive (adopts its heartbeat).</summary>
        public void Adopt(WelcomeMessage welcome)
        {
            Welcome = welcome;
            if (welcome.HeartbeatSeconds > 0)
                HeartbeatSeconds = welcome.HeartbeatSeconds;
        }

        bool TakeFromInbox(int timeoutMs, out ServerMessage message)
        {
            message = null;
            if (!inboxCount.Wait(timeoutMs))
                return false;
            return inbox.TryDequeue(out message);
        }

        void Deliver(ServerMessage message)
        {
            inbox.Enqueue(message);
            inboxCount.Release();
        }

        // ------------------------------------------------------------ threads

        void ReadLoop()
        {
            try
            {
                while (!closing)
                {
                    List<byte[]> frames = dealer.Receive();
                    ServerMessage message;
                    try
                    {
                        message = ServerMessage.Parse(frames);
                    }
                    catch (Exception e)
                    {
                        if (!(e is MsgPackException) && !(e is ProtocolException))
                            throw;
                        // A malformed server message is skipped; the connection stays usable.
                        message = new UnknownMessage { Type = "invalid", Raw = new Dictionary<string, object> { { "reason", e.Message } } };
                    }
                    if (message is PongMessage && message.Id != null && message.Id.StartsWith(HeartbeatIdPrefix))
                    {
                        HeartbeatPongs++;
                        continue;
                    }
                    Deliver(message);
                }
            }
            catch (ZmtpException e)
            {
                Lose(e.Message);
            }
            catch (Exception e)
            {
                // Last resort: a bug here must end the connection visibly, not the process.
                Lose("npcface client reader failed: " + e);
            }
        }

        void WriteLoop()
        {
            try
            {
                while (!closing)
                {
                    List<byte[]> frames;
                    int heartbeatMs = (int)(HeartbeatSeconds * 1000);
                    int wait = (int)Math.Max(1, heartbeatMs - sinceLastSend.ElapsedMilliseconds);
                    if (outbox.IsCompleted)
                        break;
                    if (outbox.TryTake(out frames, wait))
                        dealer.Send(frames);
                    else if (!closing && Welcome != null && sinceLastSend.ElapsedMilliseconds >= heartbeatMs)
                    {
                        var ping = Header("ping");
                        ping["id"] = HeartbeatIdPrefix + ping["id"];  // its pong is swallowed by ReadLoop
                        dealer.Send(new List<byte[]> { MsgPack.Encode(ping) });
                    }
                    else
                        continue;
                    sinceLastSend.Reset();
                    sinceLastSend.Start();
                }
            }
            catch (ZmtpException e)
            {
                Lose(e.Message);
            }
            catch (InvalidOperationException)
            {
                // the outbox was completed by Dispose
            }
            catch (Exception e)
            {
                Lose("npcface client writer failed: " + e);
            }
        }

        void Lose(string reason)
        {
            if (closing || lostReason != null)
                return;
            lostReason = reason;
            Deliver(new ConnectionLostMessage(reason));
        }

        /// <summary>Sends what is queued (up to 1 s), then closes the socket and stops the threads.</summary>
        public void Dispose()
        {
            if (closing)
                return;
            outbox.CompleteAdding();
            var clock = Stopwatch.StartNew();
            while (outbox.Count > 0 && lostReason == null && clock.ElapsedMilliseconds < 1000)
                Thread.Sleep(1);
            closing = true;
            dealer.Dispose();
            reader.Join(1000);
            writer.Join(1000);
        }
    }

    /// <summary>PCM conversions for `audio` payloads.</summary>
    public static class Pcm
    {
        /// <summary>Float samples in [-1, 1] (clamped) to signed 16-bit little-endian bytes.</summary>
        /// <remarks>Scaled by 32768 like 16-bit decoders (and Unity's AudioClip) do, so samples that came
        /// from 16-bit audio go back to exactly the same integers.</remarks>
        public static byte[] ToS16le(float[] samples, int offset, int count)
        {
            var bytes = new byte[count * 2];
            for (int i = 0; i < count; i++)
            {
                float s = samples[offset + i];
                if (float.IsNaN(s)) s = 0;
                int v = (int)Math.Max(-32768.0, Math.Min(32767.0, Math.Round(s * 32768.0)));
                bytes[2 * i] = (byte)v;
                bytes[2 * i + 1] = (byte)(v >> 8);
            }
            return bytes;
        }

        /// <summary>Float samples to 32-bit IEEE little-endian bytes (unchanged values).</summary>
        public static byte[] ToF32le(float[] samples, int offset, int count)
        {
            var bytes = new byte[count * 4];
            Buffer.BlockCopy(samples, offset * 4, bytes, 0, count * 4);
            if (!BitConverter.IsLittleEndian)
                for (int i = 0; i < bytes.Length; i += 4)
                {
                    Array.Reverse(bytes, i, 4);
                }
            return bytes;
        }
    }
}
