// Receive throughput of the C# client (NpcfaceClient: reader thread, msgpack parse into typed
// messages, queue, TryReceive) for bench/bench_csharp_client.py, which runs the sending peer.
//   mono ClientBench.exe PORT KIND COUNT     (KIND: tick or frame)
// Prints "seconds=...", "received=..." and, for frames, "flip_us=..." (the row flip per frame).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using Npcface.Client;

static class ClientBench
{
    static int Main(string[] args)
    {
        int port = int.Parse(args[0]);
        string kind = args[1];
        int count = int.Parse(args[2]);
        using (NpcfaceClient client = NpcfaceClient.Connect("127.0.0.1", port))
        {
            int received = 0;
            long checksum = 0;
            FrameMessage lastFrame = null;
            var clock = Stopwatch.StartNew();
            client.Post(new Dictionary<string, object> { { "type", "bench_go" }, { "kind", kind }, { "count", count } });
            while (received < count)
            {
                ServerMessage message;
                if (!client.TryReceive(10000, out message))
                    break;
                // Touch what an applier would use, so nothing is parsed for nothing.
                var tick = message as TickMessage;
                var frame = message as FrameMessage;
                if (tick != null) checksum += (long)(tick.Arkit[17] * 1000) + tick.Index;
                else if (frame != null)
                {
                    checksum += frame.Pixels[frame.Pixels.Length / 2] + frame.Index;
                    lastFrame = frame;
                }
                else continue;
                received++;
            }
            double seconds = clock.Elapsed.TotalSeconds;
            if (lastFrame != null)
            {
                // The main-thread work NpcfaceFrameApplier adds before LoadRawTextureData: the row flip.
                var flipped = new byte[lastFrame.Pixels.Length];
                var flipClock = Stopwatch.StartNew();
                for (int i = 0; i < 200; i++)
                    FrameRows.FlipVertical(lastFrame.Pixels, flipped, lastFrame.Width, lastFrame.Height, 4);
                Console.WriteLine("flip_us=" + (flipClock.Elapsed.TotalMilliseconds * 1000 / 200).ToString("F0"));
            }
            Console.WriteLine("received=" + received);
            Console.WriteLine("seconds=" + seconds.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
            Console.WriteLine("checksum=" + checksum);
            return received == count ? 0 : 1;
        }
    }
}
