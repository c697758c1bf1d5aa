// Reads PCM WAV files (16-bit integer or 32-bit float, any rate and channel count) for the
// console demo. In Unity the AudioClip gives the samples instead.
using System;
using System.IO;
using System.Text;

namespace Npcface.Tools
{
    public sealed class WavFile
    {
        public int Rate;
        public int Channels;
        public float[] Samples;  // interleaved, in [-1, 1]

        public double Duration { get { return Samples.Length / (double)Channels / Rate; } }

        public static WavFile Read(string path)
        {
            using (var reader = new BinaryReader(File.OpenRead(path)))
            {
                if (Encoding.ASCII.GetString(reader.ReadBytes(4)) != "RIFF")
                    throw new InvalidDataException(path + " is not a RIFF file");
                reader.ReadUInt32();
                if (Encoding.ASCII.GetString(reader.ReadBytes(4)) != "WAVE")
                    throw new InvalidDataException(path + " is not a WAVE file");
                int format = 0, bits = 0;
                var wav = new WavFile();
                while (reader.BaseStream.Position + 8 <= reader.BaseStream.Length)
                {
                    string chunk = Encoding.ASCII.GetString(reader.ReadBytes(4));
                    int size = reader.ReadInt32();
                    if (chunk == "fmt ")
                    {
                        format = reader.ReadUInt16();
                        wav.Channels = reader.ReadUInt16();
                        wav.Rate = reader.ReadInt32();
                        reader.ReadBytes(6);
                        bits = reader.ReadUInt16();
                        reader.ReadBytes(size - 16);
                        if (format == 0xFFFE)
                            format = bits == 32 ? 3 : 1;  // WAVE_FORMAT_EXTENSIBLE; subformat assumed from bits
                    }
                    else if (chunk == "data")
                    {
                        byte[] data = reader.ReadBytes(size);
                        wav.Samples = Decode(data, format, bits);
                        return wav;
                    }
                    else
                        reader.ReadBytes(size + (size & 1));
                }
                throw new InvalidDataException(path + " has no data chunk");
            }
        }

        static float[] Decode(byte[] data, int format, int bits)
        {
            if (format == 1 && bits == 16)
            {
                var samples = new float[data.Length / 2];
                for (int i = 0; i < samples.Length; i++)
                    samples[i] = (short)(data[2 * i] | (data[2 * i + 1] << 8)) / 32768f;
                return samples;
            }
            if (format == 3 && bits == 32)
            {
                var samples = new float[data.Length / 4];
                Buffer.BlockCopy(data, 0, samples, 0, samples.Length * 4);
                return samples;
            }
            throw new InvalidDataException(string.Format("WAV format {0} with {1} bits is not supported (16-bit PCM or 32-bit float)", format, bits));
        }
    }
}
