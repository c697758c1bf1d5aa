// A ZeroMQ DEALER socket speaking ZMTP 3.x over one TCP connection, with no third-party code.
//
// Implemented: the 64-byte greeting (ZMTP 3.0 and 3.1 peers), the NULL security mechanism
// (READY command with Socket-Type and optional Identity, ERROR command from the peer), short and
// long frames, the MORE flag for multipart messages, and the ZMTP 3.1 PING/PONG heartbeat (a PING
// from the peer is answered with a PONG; SendPing lets the caller probe the peer).
// Refused with a ZmtpException: PLAIN and CURVE security (npcface serves on loopback without
// keys by default), ZMTP 1.0/2.0 peers, peer socket types other than ROUTER/DEALER/REP, and frames
// larger than MaxFrameBytes. Not implemented: reconnection (make a new ZmtpDealer), several peers
// per socket, and the SUBSCRIBE/CANCEL commands (PUB/SUB only).
//
// C# 7.2 and .NET Standard 2.0 APIs only, so it builds with Debian's mcs and in every Unity.
using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Npcface.Client
{
    /// <summary>A broken, refused or closed ZMTP connection.</summary>
    public sealed class ZmtpException : Exception
    {
        public ZmtpException(string message) : base(message) { }
        public ZmtpException(string message, Exception inner) : base(message, inner) { }
    }

    public sealed class ZmtpDealer : IDisposable
    {
        const byte FlagMore = 0x01;
        const byte FlagLong = 0x02;
        const byte FlagCommand = 0x04;
        const int GreetingBytes = 64;

        /// <summary>Frames above this size are refused (guards memory against a confused peer).</summary>
        public long MaxFrameBytes = 256L * 1024 * 1024;

        readonly Socket socket;
        readonly object sendLock = new object();
        readonly byte[] readBuffer = new byte[64 * 1024];
        int readStart;
        int readEnd;
        bool peerClosed;  // the peer ended the connection (an orderly close, not an error)
        volatile bool disposed;

        /// <summary>The peer's socket type from its READY command, e.g. "ROUTER".</summary>
        public string PeerSocketType { get; private set; }
        /// <summary>The peer's ZMTP minor version: 0 for 3.0, 1 for 3.1 (heartbeats need 1).</summary>
        public int PeerMinorVersion { get; private set; }
        /// <summary>PONGs received (answers to SendPing).</summary>
        public int PongsReceived { get; private set; }

        ZmtpDealer(Socket socket)
        {
            this.socket = socket;
        }

        /// <summary>Connects and completes the ZMTP handshake, or throws ZmtpException.</summary>
        /// <param name="identity">Optional routing id the ROUTER will see (1..255 bytes, first byte not 0).</param>
        public static ZmtpDealer Connect(string host, int port, int timeoutMs = 5000, byte[] identity = null)
        {
            if (identity != null && (identity.Length == 0 || identity.Length > 255 || identity[0] == 0))
                throw new ArgumentException("identity must be 1..255 bytes and must not start with a zero byte");
            var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            tcp.NoDelay = true;  // ticks are small and latency matters more than packet count
            tcp.ReceiveBufferSize = 4 << 20;  // a 1 MiB frame in few reads
            try
            {
                IAsyncResult pending = tcp.BeginConnect(host, port, null, null);
                if (!pending.AsyncWaitHandle.WaitOne(timeoutMs))
                    throw new ZmtpException(string.Format("connecting to {0}:{1} timed out after {2} ms", host, port, timeoutMs));
                tcp.EndConnect(pending);
            }
            catch (SocketException e)
            {
                tcp.Close();
                throw new ZmtpException(string.Format("cannot connect to {0}:{1}: {2} (is `npcface serve` running on that port?)", host, port, e.Message), e);
            }
            catch (ZmtpException)
            {
                tcp.Close();
                throw;
            }
            var dealer = new ZmtpDealer(tcp);
            try
            {
                tcp.ReceiveTimeout = timeoutMs;
                dealer.Handshake(identity);
                tcp.ReceiveTimeout = 0;
            }
            catch (Exception)
            {
                dealer.Dispose();
                throw;
            }
            return dealer;
        }

        void Handshake(byte[] identity)
        {
            var greeting = new byte[GreetingBytes];
            greeting[0] = 0xFF;
            greeting[9] = 0x7F;
            greeting[10] = 3;  // version 3.1
            greeting[11] = 1;
            Encoding.ASCII.GetBytes("NULL", 0, 4, greeting, 12);
            // greeting[32] as-server = 0, the rest is zero filler.
            // Signature and major version first: libzmq then sends its whole greeting, so a
            // mechanism mismatch (a CurveZMQ server) can be named before the server hangs up.
            SendRaw(greeting, 0, 11);

            var peer = new byte[GreetingBytes];
            ReadExactly(peer, 0, 10);
            if (peer[0] != 0xFF || (peer[9] & 0x01) != 0x01)
                throw new ZmtpException("the peer is not a ZeroMQ socket (bad greeting signature)");
            ReadExactly(peer, 10, GreetingBytes - 10);
            if (peer[10] < 3)
                throw new ZmtpException(string.Format("the peer speaks ZMTP {0}.x; this client needs ZMTP 3.0 or later (libzmq 4+)", peer[10]));
            PeerMinorVersion = peer[10] == 3 ? peer[11] : 1;
            string mechanism = Encoding.ASCII.GetString(peer, 12, 20).TrimEnd('\0');
            if (mechanism != "NULL")
                throw new ZmtpException(string.Format("the peer asks for the {0} security mechanism; this client implements only NULL (run npcface on loopback without CurveZMQ keys)", mechanism));
            SendRaw(greeting, 11, GreetingBytes - 11);

            var ready = new MemoryStream();
            WriteCommandName(ready, "READY");
            WriteProperty(ready, "Socket-Type", Encoding.ASCII.GetBytes("DEALER"));
            if (identity != null)
                WriteProperty(ready, "Identity", identity);
            SendFrames(new[] { ready.ToArray() }, true);

            byte[] reply;
            bool isCommand;
            try
            {
                reply = ReadFrame(out bool more, out isCommand);
            }
            catch (ZmtpException e) when (peerClosed)
            {
                // libzmq hangs up on a socket type that cannot pair with its own; whether its
                // READY (naming its type) went out before that depends on timing, so say the
                // same thing when it did not.
                throw new ZmtpException("the peer refused the handshake: it hung up on our READY (Socket-Type DEALER; npcface serves a ROUTER)", e);
            }
            if (!isCommand)
                throw new ZmtpException("the peer sent a message before its READY command");
            string name = CommandName(reply, out int offset);
            if (name == "ERROR")
                throw new ZmtpException("the peer refused the handshake: " + ErrorReason(reply, offset));
            if (name != "READY")
                throw new ZmtpException("expected READY from the peer, got " + name);
            Dictionary<string, byte[]> properties = ParseProperties(reply, offset);
            byte[] socketType;
            PeerSocketType = properties.TryGetValue("Socket-Type", out socketType) ? Encoding.ASCII.GetString(socketType) : "";
            if (PeerSocketType != "ROUTER" && PeerSocketType != "DEALER" && PeerSocketType != "REP")
                throw new ZmtpException(string.Format("a DEALER cannot talk to a {0} socket", PeerSocketType == "" ? "nameless" : PeerSocketType));
        }

        /// <summary>Sends one multipart message (thread-safe; one frame is allowed to be empty).</summary>
        public void Send(IList<byte[]> frames)
        {
            if (frames == null || frames.Count == 0)
                throw new ArgumentException("a message needs at least one frame");
            SendFrames(frames, false);
        }

        /// <summary>Sends a ZMTP 3.1 PING; the peer's PONG increments PongsReceived during Receive.</summary>
        public void SendPing()
        {
            if (PeerMinorVersion < 1)
                throw new ZmtpException("the peer speaks ZMTP 3.0, which has no heartbeats");
            var ping = new MemoryStream();
            WriteCommandName(ping, "PING");
            ping.WriteByte(0);  // TTL 0: no timeout asked of the peer
            ping.WriteByte(0);
            SendFrames(new[] { ping.ToArray() }, true);
        }

        /// <summary>Waits up to timeoutMs (-1: forever) for a whole message; false on timeout.</summary>
        /// <remarks>Answers PINGs on the way. Not thread-safe: call it from one reader thread.</remarks>
        public bool TryReceive(int timeoutMs, out List<byte[]> message)
        {
            message = null;
            while (true)
            {
                if (readStart == readEnd && !WaitReadable(timeoutMs))
                    return false;
                byte[] frame = ReadFrame(out bool more, out bool isCommand);
                if (isCommand)
                {
                    HandleCommand(frame);
                    continue;
                }
                if (message == null)
                    message = new List<byte[]>();
                message.Add(frame);
                if (!more)
                    return true;
                timeoutMs = -1;  // the rest of a started message follows at once
            }
        }

        /// <summary>Blocks until a whole message arrives.</summary>
        public List<byte[]> Receive()
        {
            TryReceive(-1, out List<byte[]> message);
            return message;
        }

        public void Dispose()
        {
            if (disposed)
                return;
            disposed = true;
            try { socket.Shutdown(SocketShutdown.Both); }
            catch (SocketException) { }
            catch (ObjectDisposedException) { }
            socket.Close();
        }

        void HandleCommand(byte[] frame)
        {
            string name = CommandName(frame, out int offset);
            if (name == "PING")
            {
                // PONG echoes the ping context (bytes after the 2-byte TTL).
                int contextStart = offset + 2;
                int contextLength = Math.Max(0, frame.Length - contextStart);
                var pong = new MemoryStream();
                WriteCommandName(pong, "PONG");
                if (contextLength > 0)
                    pong.Write(frame, contextStart, contextLength);
                SendFrames(new[] { pong.ToArray() }, true);
            }
            else if (name == "PONG")
                PongsReceived++;
            else if (name == "ERROR")
                throw new ZmtpException("the peer closed the connection with an error: " + ErrorReason(frame, offset));
            // Other commands (SUBSCRIBE, CANCEL, unknown ones) mean nothing to a DEALER: ignored.
        }

        bool WaitReadable(int timeoutMs)
        {
            try
            {
                int micros = timeoutMs < 0 ? -1 : (int)Math.Min(int.MaxValue, timeoutMs * 1000L);
                return socket.Poll(micros, SelectMode.SelectRead);
            }
            catch (ObjectDisposedException e)
            {
                throw new ZmtpException("the connection was closed", e);
            }
            catch (SocketException e)
            {
                throw new ZmtpException("the connection broke: " + e.Message, e);
            }
        }

        byte[] ReadFrame(out bool more, out bool isCommand)
        {
            var header = new byte[9];
            ReadExactly(header, 0, 2);
            byte flags = header[0];
            if ((flags & 0xF8) != 0)
                throw new ZmtpException(string.Format("bad frame flags 0x{0:X2}: the stream is out of sync", flags));
            more = (flags & FlagMore) != 0;
            isCommand = (flags & FlagCommand) != 0;
            long size;
            if ((flags & FlagLong) != 0)
            {
                ReadExactly(header, 2, 7);
                size = 0;
                for (int i = 1; i < 9; i++)
                    size = (size << 8) | header[i];
            }
            else
                size = header[1];
            if (size < 0 || size > MaxFrameBytes)
                throw new ZmtpException(string.Format("the peer sent a {0}-byte frame, over the {1}-byte limit", size, MaxFrameBytes));
            var body = new byte[size];
            ReadExactly(body, 0, (int)size);
            return body;
        }

        void ReadExactly(byte[] target, int offset, int count)
        {
            while (count > 0)
            {
                if (readStart == readEnd)
                {
                    // Large bodies go straight into the target; small reads refill the buffer.
                    if (count >= readBuffer.Length)
                    {
                        int direct = ReceiveSome(target, offset, count);
                        offset += direct;
                        count -= direct;
                        continue;
                    }
                    readStart = 0;
                    readEnd = ReceiveSome(readBuffer, 0, readBuffer.Length);
                }
                int take = Math.Min(count, readEnd - readStart);
                Buffer.BlockCopy(readBuffer, readStart, target, offset, take);
                readStart += take;
                offset += take;
                count -= take;
            }
        }

        int ReceiveSome(byte[] target, int offset, int count)
        {
            int got;
            try
            {
                got = socket.Receive(target, offset, count, SocketFlags.None);
            }
            catch (ObjectDisposedException e)
            {
                throw new ZmtpException("the connection was closed", e);
            }
            catch (SocketException e)
            {
                if (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock)
                    throw new ZmtpException("the peer stopped answering during the ZMTP handshake (is that port a ZeroMQ socket?)", e);
                throw new ZmtpException("the connection broke: " + e.Message, e);
            }
            if (got == 0)
            {
                peerClosed = true;
                throw new ZmtpException("the peer closed the connection");
            }
            return got;
        }

        void SendFrames(IList<byte[]> frames, bool isCommand)
        {
            // One gather write per message: headers and bodies without copying the bodies.
            var segments = new List<ArraySegment<byte>>(frames.Count * 2);
            for (int i = 0; i < frames.Count; i++)
            {
                byte[] body = frames[i] ?? new byte[0];
                byte flags = isCommand ? FlagCommand : (i < frames.Count - 1 ? FlagMore : (byte)0);
                byte[] header;
                if (body.Length > 255)
                {
                    header = new byte[9];
                    header[0] = (byte)(flags | FlagLong);
                    long size = body.Length;
                    for (int b = 8; b >= 1; b--, size >>= 8)
                        header[b] = (byte)size;
                }
                else
                    header = new[] { flags, (byte)body.Length };
                segments.Add(new ArraySegment<byte>(header));
                if (body.Length > 0)
                    segments.Add(new ArraySegment<byte>(body));
            }
            lock (sendLock)
            {
                try
                {
                    socket.Send(segments, SocketFlags.None);
                }
                catch (ObjectDisposedException e)
                {
                    throw new ZmtpException("the connection was closed", e);
                }
                catch (SocketException e)
                {
                    throw new ZmtpException("the connection broke: " + e.Message, e);
                }
            }
        }

        void SendRaw(byte[] bytes, int offset, int count)
        {
            try
            {
                socket.Send(bytes, offset, count, SocketFlags.None);
            }
            catch (SocketException e)
            {
                throw new ZmtpException("the connection broke: " + e.Message, e);
            }
        }

        static void WriteCommandName(MemoryStream stream, string name)
        {
            stream.WriteByte((byte)name.Length);
            byte[] bytes = Encoding.ASCII.GetBytes(name);
            stream.Write(bytes, 0, bytes.Length);
        }

        static void WriteProperty(MemoryStream stream, string name, byte[] value)
        {
            stream.WriteByte((byte)name.Length);
            byte[] nameBytes = Encoding.ASCII.GetBytes(name);
            stream.Write(nameBytes, 0, nameBytes.Length);
            int length = value.Length;
            stream.WriteByte((byte)(length >> 24));
            stream.WriteByte((byte)(length >> 16));
            stream.WriteByte((byte)(length >> 8));
            stream.WriteByte((byte)length);
            stream.Write(value, 0, value.Length);
        }

        static string CommandName(byte[] frame, out int offset)
        {
            if (frame.Length < 1 || frame.Length < 1 + frame[0])
                throw new ZmtpException("the peer sent a malformed command frame");
            offset = 1 + frame[0];
            return Encoding.ASCII.GetString(frame, 1, frame[0]);
        }

        static string ErrorReason(byte[] frame, int offset)
        {
            if (offset >= frame.Length)
                return "(no reason given)";
            int length = Math.Min(frame[offset], frame.Length - offset - 1);
            return Encoding.ASCII.GetString(frame, offset + 1, length);
        }

        static Dictionary<string, byte[]> ParseProperties(byte[] frame, int offset)
        {
            var properties = new Dictionary<string, byte[]>();
            while (offset < frame.Length)
            {
                int nameLength = frame[offset];
                if (offset + 1 + nameLength + 4 > frame.Length)
                    throw new ZmtpException("the peer sent a malformed READY command");
                string name = Encoding.ASCII.GetString(frame, offset + 1, nameLength);
                offset += 1 + nameLength;
                long valueLength = ((long)frame[offset] << 24) | ((long)frame[offset + 1] << 16) | ((long)frame[offset + 2] << 8) | frame[offset + 3];
                offset += 4;
                if (offset + valueLength > frame.Length)
                    throw new ZmtpException("the peer sent a malformed READY command");
                var value = new byte[valueLength];
                Buffer.BlockCopy(frame, offset, value, 0, (int)valueLength);
                offset += (int)valueLength;
                properties[name] = value;
            }
            return properties;
        }
    }
}
