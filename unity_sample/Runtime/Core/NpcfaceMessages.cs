// Typed server messages of the npcface sidecar protocol 1.0 (bridge/PROTOCOL.md, section 5).
// Parsing follows the spec's rules for clients: unknown fields and unknown message types are
// ignored (kept in Raw / as UnknownMessage), integers and floats of any msgpack width accepted.
using System;
using System.Collections.Generic;

namespace Npcface.Client
{
    /// <summary>A server message whose fields do not have the types the spec promises.</summary>
    public sealed class ProtocolException : Exception
    {
        public ProtocolException(string message) : base(message) { }
    }

    public abstract class ServerMessage
    {
        /// <summary>The message's "type" field.</summary>
        public string Type;
        /// <summary>The id of the request this answers (nil for ticks and frames).</summary>
        public string Id;
        /// <summary>The session the message belongs to, when it has one.</summary>
        public string Session;
        /// <summary>The whole decoded header, for fields this client does not know yet.</summary>
        public Dictionary<string, object> Raw;

        /// <summary>Parses [header, payloads...] as received from the DEALER socket.</summary>
        public static ServerMessage Parse(IList<byte[]> frames)
        {
            if (frames == null || frames.Count == 0)
                throw new ProtocolException("an empty message");
            var header = MsgPack.Decode(frames[0]) as Dictionary<string, object>;
            if (header == null)
                throw new ProtocolException("the message header is not a msgpack map");
            string type = Fields.OptionalString(header, "type");
            ServerMessage message;
            switch (type)
            {
                case "welcome": message = new WelcomeMessage(header); break;
                case "avatar": message = new AvatarMessage(header); break;
                case "opened": message = new OpenedMessage(header); break;
                case "tick": message = new TickMessage(header); break;
                case "frame": message = new FrameMessage(header, frames.Count > 1 ? frames[1] : null); break;
                case "line_end": message = new LineEndMessage(header); break;
                case "closed": message = new ClosedMessage(header); break;
                case "pong": message = new PongMessage(header); break;
                case "error": message = new ErrorMessage(header); break;
                default: message = new UnknownMessage(); break;  // a later 1.x server's addition
            }
            message.Type = type;
            message.Id = Fields.OptionalString(header, "id");
            message.Session = Fields.OptionalString(header, "session");
            message.Raw = header;
            return message;
        }
    }

    public sealed class UnknownMessage : ServerMessage { }

    /// <summary>Not from the server: the connection broke (the reason is in Reason).</summary>
    public sealed class ConnectionLostMessage : ServerMessage
    {
        public string Reason;
        public ConnectionLostMessage(string reason) { Type = "connection_lost"; Reason = reason; }
    }

    public sealed class WelcomeMessage : ServerMessage
    {
        public string Protocol, Server, Instance;
        public double HeartbeatSeconds, IdleTimeoutSeconds;
        public string[] Outputs, Emotions, ArkitNames;
        public Dictionary<string, object> Limits;

        public WelcomeMessage(Dictionary<string, object> h)
        {
            Protocol = Fields.String(h, "protocol");
            Server = Fields.OptionalString(h, "server");
            Instance = Fields.OptionalString(h, "instance");
            HeartbeatSeconds = Fields.Double(h, "heartbeat_s");
            IdleTimeoutSeconds = Fields.Double(h, "idle_timeout_s");
            var capabilities = Fields.Map(h, "capabilities");
            Outputs = Fields.OptionalStrings(capabilities, "outputs");
            Emotions = Fields.OptionalStrings(capabilities, "emotions");
            object channels;
            if (capabilities.TryGetValue("channels", out channels) && channels is Dictionary<string, object>)
                ArkitNames = Fields.OptionalStrings((Dictionary<string, object>)channels, "arkit");
            Limits = Fields.Map(h, "limits");
        }
    }

    public sealed class AvatarMessage : ServerMessage
    {
        public string Avatar;
        public bool Cached;
        public int Width, Height;

        public AvatarMessage(Dictionary<string, object> h)
        {
            Avatar = Fields.String(h, "avatar");
            Cached = Fields.OptionalBool(h, "cached");
            Width = (int)Fields.Long(h, "width");
            Height = (int)Fields.Long(h, "height");
        }
    }

    public sealed class OpenedMessage : ServerMessage
    {
        public string[] Outputs, Channels;
        public double Fps;
        public string FrameFormat;
        public int FrameWindow;
        public int FrameWidth, FrameHeight;
        public string Motion;  // 1.2: the motion generator animating the session

        public OpenedMessage(Dictionary<string, object> h)
        {
            Motion = Fields.OptionalString(h, "motion");
            Outputs = Fields.OptionalStrings(h, "outputs");
            Channels = Fields.OptionalStrings(h, "channels");
            Fps = Fields.Double(h, "fps");
            FrameFormat = Fields.OptionalString(h, "frame_format");
            FrameWindow = (int)Fields.Long(h, "frame_window");
            float[] size = Fields.OptionalFloats(h, "frame_size");
            if (size != null && size.Length == 2)
            {
                FrameWidth = (int)size[0];
                FrameHeight = (int)size[1];
            }
        }
    }

    /// <summary>The face at one instant: pose, gaze and the per-tick channel arrays.</summary>
    public sealed class TickMessage : ServerMessage
    {
        public int Line, Index;
        public double Time;
        public float[] HeadRotation;      // yaw, pitch, roll degrees (yaw + = the character's left)
        public float[] HeadTranslation;   // x, y, z metres (z + = toward the camera)
        public float[] GazeLeft, GazeRight;  // yaw, pitch degrees
        public float[] Arkit;    // 52 weights in Live Link Face CSV order, or null
        public float[] Visemes;  // 15 Oculus visemes, or null
        public float[] Vrm;      // 11 VRM presets, or null

        public TickMessage(Dictionary<string, object> h)
        {
            Line = (int)Fields.Long(h, "line");
            Index = (int)Fields.Long(h, "index");
            Time = Fields.Double(h, "time");
            HeadRotation = Fields.Floats(h, "head_rotation", 3);
            HeadTranslation = Fields.Floats(h, "head_translation", 3);
            GazeLeft = Fields.Floats(h, "gaze_left", 2);
            GazeRight = Fields.Floats(h, "gaze_right", 2);
            Arkit = Fields.OptionalFloats(h, "arkit");
            Visemes = Fields.OptionalFloats(h, "visemes");
            Vrm = Fields.OptionalFloats(h, "vrm");
        }
    }

    /// <summary>A rendered portrait. Pixels are rows top to bottom (flip for Unity textures).</summary>
    public sealed class FrameMessage : ServerMessage
    {
        public int Line, Index, Width, Height;
        public double Time;
        public string Format;  // "rgba8", "rgb8" or "jpeg"
        public byte[] Pixels;

        public FrameMessage(Dictionary<string, object> h, byte[] payload)
        {
            Line = (int)Fields.Long(h, "line");
            Index = (int)Fields.Long(h, "index");
            Time = Fields.Double(h, "time");
            Width = (int)Fields.Long(h, "width");
            Height = (int)Fields.Long(h, "height");
            Format = Fields.String(h, "format");
            if (payload == null)
                throw new ProtocolException("a frame message without its pixel payload");
            int bytesPerPixel = Format == "rgba8" ? 4 : Format == "rgb8" ? 3 : 0;
            if (bytesPerPixel > 0 && payload.Length != Width * Height * bytesPerPixel)
                throw new ProtocolException(string.Format("a {0}x{1} {2} frame with {3} bytes", Width, Height, Format, payload.Length));
            Pixels = payload;
        }
    }

    public sealed class LineEndMessage : ServerMessage
    {
        public int Line, Ticks, FramesSent, FramesDropped;
        public double Duration;

        public LineEndMessage(Dictionary<string, object> h)
        {
            Line = (int)Fields.Long(h, "line");
            Ticks = (int)Fields.Long(h, "ticks");
            Duration = Fields.Double(h, "duration");
            FramesSent = (int)Fields.OptionalLong(h, "frames_sent");
            FramesDropped = (int)Fields.OptionalLong(h, "frames_dropped");
        }
    }

    public sealed class ClosedMessage : ServerMessage
    {
        public int Lines, TicksSent, FramesSent, FramesDropped;

        public ClosedMessage(Dictionary<string, object> h)
        {
            Lines = (int)Fields.OptionalLong(h, "lines");
            TicksSent = (int)Fields.OptionalLong(h, "ticks_sent");
            FramesSent = (int)Fields.OptionalLong(h, "frames_sent");
            FramesDropped = (int)Fields.OptionalLong(h, "frames_dropped");
        }
    }

    public sealed class PongMessage : ServerMessage
    {
        public string Instance;
        public PongMessage(Dictionary<string, object> h) { Instance = Fields.OptionalString(h, "instance"); }
    }

    /// <summary>The server refused a request (PROTOCOL.md section 6 lists the codes).</summary>
    public sealed class ErrorMessage : ServerMessage
    {
        public string Code, Message, Request;
        public Dictionary<string, object> Details;

        public ErrorMessage(Dictionary<string, object> h)
        {
            Code = Fields.String(h, "code");
            Message = Fields.OptionalString(h, "message");
            Request = Fields.OptionalString(h, "request");
            object details;
            Details = h.TryGetValue("details", out details) && details is Dictionary<string, object>
                ? (Dictionary<string, object>)details : new Dictionary<string, object>();
        }

        public override string ToString() { return Code + ": " + Message; }
    }

    /// <summary>Typed access to decoded header fields, with the spec's leniency on number widths.</summary>
    public static class Fields
    {
        public static string String(Dictionary<string, object> h, string key)
        {
            string value = OptionalString(h, key);
            if (value == null)
                throw new ProtocolException("the server's message lacks the string field '" + key + "'");
            return value;
        }

        public static string OptionalString(Dictionary<string, object> h, string key)
        {
            object value;
            return h.TryGetValue(key, out value) ? value as string : null;
        }

        public static bool OptionalBool(Dictionary<string, object> h, string key)
        {
            object value;
            return h.TryGetValue(key, out value) && value is bool && (bool)value;
        }

        public static long Long(Dictionary<string, object> h, string key)
        {
            object value;
            if (!h.TryGetValue(key, out value) || !(value is long))
                throw new ProtocolException("the server's message lacks the integer field '" + key + "'");
            return (long)value;
        }

        public static long OptionalLong(Dictionary<string, object> h, string key)
        {
            object value;
            return h.TryGetValue(key, out value) && value is long ? (long)value : 0;
        }

        public static double Double(Dictionary<string, object> h, string key)
        {
            object value;
            double number;
            if (!h.TryGetValue(key, out value) || !TryNumber(value, out number))
                throw new ProtocolException("the server's message lacks the number field '" + key + "'");
            return number;
        }

        public static Dictionary<string, object> Map(Dictionary<string, object> h, string key)
        {
            object value;
            h.TryGetValue(key, out value);
            return value as Dictionary<string, object> ?? new Dictionary<string, object>();
        }

        public static float[] Floats(Dictionary<string, object> h, string key, int count)
        {
            float[] values = OptionalFloats(h, key);
            if (values == null || values.Length != count)
                throw new ProtocolException(string.Format("the server's field '{0}' is not an array of {1} numbers", key, count));
            return values;
        }

        public static float[] OptionalFloats(Dictionary<string, object> h, string key)
        {
            object value;
            if (!h.TryGetValue(key, out value) || value == null)
                return null;
            var list = value as List<object>;
            if (list == null)
                throw new ProtocolException("the server's field '" + key + "' is not an array");
            var result = new float[list.Count];
            for (int i = 0; i < list.Count; i++)
            {
                double number;
                if (!TryNumber(list[i], out number))
                    throw new ProtocolException("the server's field '" + key + "' holds a non-number");
                result[i] = (float)number;
            }
            return result;
        }

        public static string[] OptionalStrings(Dictionary<string, object> h, string key)
        {
            object value;
            if (!h.TryGetValue(key, out value) || !(value is List<object>))
                return null;
            var list = (List<object>)value;
            var result = new string[list.Count];
            for (int i = 0; i < list.Count; i++)
                result[i] = list[i] as string;
            return result;
        }

        static bool TryNumber(object value, out double number)
        {
            if (value is double) { number = (double)value; return true; }
            if (value is float) { number = (float)value; return true; }
            if (value is long) { number = (long)value; return true; }
            if (value is ulong) { number = (ulong)value; return true; }
            number = 0;
            return false;
        }
    }
}
