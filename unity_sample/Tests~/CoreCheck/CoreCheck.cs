// Drives the client core from tests/test_unity_client.py against real msgpack-python data and a
// real pyzmq ROUTER. Prints "key=value" lines the test asserts on; exit code 1 on a failure.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Npcface.Client;

static class CoreCheck
{
    static int Main(string[] args)
    {
        try
        {
            switch (args.Length > 0 ? args[0] : "")
            {
                case "msgpack-roundtrip": return Roundtrip(args[1], args[2]);
                case "msgpack-decode": return DecodeOnly(args[1]);
                case "msgpack-encode": return EncodeSample(args[1]);
                case "echo": return Echo(args[1], int.Parse(args[2]));
                case "connect": return ConnectOnly(args[1], int.Parse(args[2]));
                case "arkit-names": Console.WriteLine("arkit=" + string.Join(",", Arkit.Names)); return 0;
                default:
                    Console.Error.WriteLine("usage: CoreCheck.exe msgpack-roundtrip IN OUT | msgpack-decode IN | msgpack-encode OUT | echo HOST PORT | connect HOST PORT");
                    return 64;
            }
        }
        catch (ZmtpException e)
        {
            Console.WriteLine("zmtp_error=" + e.Message);
            return 1;
        }
    }

    static int Roundtrip(string input, string output)
    {
        object value = MsgPack.Decode(File.ReadAllBytes(input));
        File.WriteAllBytes(output, MsgPack.Encode(value));
        Console.WriteLine("roundtrip=ok");
        return 0;
    }

    static int DecodeOnly(string input)
    {
        try
        {
            object value = MsgPack.Decode(File.ReadAllBytes(input));
            Console.WriteLine("decoded=" + (value == null ? "null" : value.GetType().Name));
            return 0;
        }
        catch (MsgPackException e)
        {
            Console.WriteLine("msgpack_error=" + e.Message);
            return 0;
        }
    }

    // Values at every width boundary, so the test can compare with msgpack-python's encoding.
    static int EncodeSample(string output)
    {
        var ints = new List<object>();
        foreach (long v in new long[] { 0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295L, 4294967296L,
                                        long.MaxValue, -1, -32, -33, -128, -129, -32768, -32769,
                                        int.MinValue, (long)int.MinValue - 1, long.MinValue })
            ints.Add(v);
        var sample = new Dictionary<string, object>
        {
            { "ints", ints },
            { "u64max", ulong.MaxValue },
            { "f32", 0.25f },
            { "f64", 1.0 / 3.0 },
            { "nil", null },
            { "yes", true },
            { "no", false },
            { "short_str", "héllo" },
            { "str_255", new string('a', 255) },
            { "str_65536", new string('b', 65536) },
            { "bin_0", new byte[0] },
            { "bin_300", new byte[300] },
            { "bin_70000", new byte[70000] },
            { "array_16", new List<object>(new object[16]) },
            { "array_70000", new float[70000] },
        };
        var big = new Dictionary<string, object>();
        for (int i = 0; i < 20; i++)
            big["k" + i] = i;
        sample["map_20"] = big;
        File.WriteAllBytes(output, MsgPack.Encode(sample));
        Console.WriteLine("encoded=ok");
        return 0;
    }

    static int ConnectOnly(string host, int port)
    {
        using (var dealer = ZmtpDealer.Connect(host, port, 2000))
            Console.WriteLine("peer_socket_type=" + dealer.PeerSocketType);
        return 0;
    }

    // Sends messages of every frame-size class, expects each echoed back unchanged.
    static int Echo(string host, int port)
    {
        using (var dealer = ZmtpDealer.Connect(host, port, 5000, Encoding.ASCII.GetBytes("unity-test")))
        {
            Console.WriteLine("peer_socket_type=" + dealer.PeerSocketType);
            Console.WriteLine("peer_minor_version=" + dealer.PeerMinorVersion);
            var sizes = new[] { new[] { 0 }, new[] { 1 }, new[] { 255 }, new[] { 256 }, new[] { 5, 0, 300 }, new[] { 512 * 512 * 4 }, new[] { 3, 20 * 1024 * 1024 } };
            int matched = 0;
            var random = new Random(7);
            foreach (int[] message in sizes)
            {
                var frames = new List<byte[]>();
                foreach (int size in message)
                {
                    var frame = new byte[size];
                    random.NextBytes(frame);
                    frames.Add(frame);
                }
                dealer.Send(frames);
                List<byte[]> reply;
                if (!dealer.TryReceive(60000, out reply))  // generous: only a lost echo hits it
                {
                    Console.WriteLine("echo_timeout=" + string.Join(",", message));
                    return 1;
                }
                if (SameFrames(frames, reply))
                    matched++;
                else
                    Console.WriteLine("echo_mismatch=" + string.Join(",", message));
            }
            Console.WriteLine("echo_matched=" + matched + "/" + sizes.Length);
            List<byte[]> none;
            Console.WriteLine("quiet_timeout=" + (!dealer.TryReceive(50, out none)));
            dealer.SendPing();
            // The echo peer sends one more message after our ping; the PONG arrives before it.
            dealer.Send(new List<byte[]> { Encoding.ASCII.GetBytes("last") });
            List<byte[]> last;
            dealer.TryReceive(60000, out last);
            Console.WriteLine("pongs=" + dealer.PongsReceived);
            return matched == sizes.Length ? 0 : 1;
        }
    }

    static bool SameFrames(List<byte[]> a, List<byte[]> b)
    {
        if (b == null || a.Count != b.Count)
            return false;
        for (int i = 0; i < a.Count; i++)
        {
            if (a[i].Length != b[i].Length)
                return false;
            for (int j = 0; j < a[i].Length; j++)
                if (a[i][j] != b[i][j])
                    return false;
        }
        return true;
    }
}
