// The msgpack subset npcface's protocol uses, written for this project (no reflection, so it
// works under IL2CPP and AOT): nil, bool, integers of every width, float32/float64, str, bin,
// array and map. Extension types (timestamps, ext/fixext) are refused with MsgPackException.
//
// Decoded values are plain objects: null, bool, long (ulong above long.MaxValue), float, double,
// string, byte[], List<object> and Dictionary<string, object> (map keys must be strings).
using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Npcface.Client
{
    /// <summary>Bytes that are not valid msgpack, or a value the subset cannot encode.</summary>
    public sealed class MsgPackException : Exception
    {
        public MsgPackException(string message) : base(message) { }
    }

    public static class MsgPack
    {
        /// <summary>Deeper nesting than this is refused (guards the stack against hostile input).</summary>
        public const int MaxDepth = 64;

        public static byte[] Encode(object value)
        {
            var writer = new MsgPackWriter();
            writer.Write(value);
            return writer.ToArray();
        }

        /// <summary>Decodes exactly one value that fills the whole buffer.</summary>
        public static object Decode(byte[] data)
        {
            if (data == null)
                throw new MsgPackException("no data");
            var reader = new MsgPackReader(data, 0, data.Length);
            object value = reader.ReadValue(0);
            if (reader.Position != data.Length)
                throw new MsgPackException(string.Format("{0} trailing bytes after the msgpack value", data.Length - reader.Position));
            return value;
        }
    }

    public sealed class MsgPackWriter
    {
        readonly MemoryStream stream = new MemoryStream(256);

        public byte[] ToArray() { return stream.ToArray(); }

        public void WriteNil() { stream.WriteByte(0xC0); }

        public void WriteBool(bool value) { stream.WriteByte(value ? (byte)0xC3 : (byte)0xC2); }

        /// <summary>Writes the shortest encoding of a signed integer.</summary>
        public void WriteInt(long value)
        {
            if (value >= 0)
            {
                WriteUInt((ulong)value);
                return;
            }
            if (value >= -32) stream.WriteByte((byte)(sbyte)value);
            else if (value >= sbyte.MinValue) { stream.WriteByte(0xD0); stream.WriteByte((byte)(sbyte)value); }
            else if (value >= short.MinValue) { stream.WriteByte(0xD1); WriteBigEndian((ulong)value, 2); }
            else if (value >= int.MinValue) { stream.WriteByte(0xD2); WriteBigEndian((ulong)value, 4); }
            else { stream.WriteByte(0xD3); WriteBigEndian((ulong)value, 8); }
        }

        public void WriteUInt(ulong value)
        {
            if (value <= 0x7F) stream.WriteByte((byte)value);
            else if (value <= byte.MaxValue) { stream.WriteByte(0xCC); stream.WriteByte((byte)value); }
            else if (value <= ushort.MaxValue) { stream.WriteByte(0xCD); WriteBigEndian(value, 2); }
            else if (value <= uint.MaxValue) { stream.WriteByte(0xCE); WriteBigEndian(value, 4); }
            else { stream.WriteByte(0xCF); WriteBigEndian(value, 8); }
        }

        public void WriteFloat(float value)
        {
            stream.WriteByte(0xCA);
            WriteBigEndian(BitConverter.ToUInt32(BitConverter.GetBytes(value), 0), 4);
        }

        public void WriteDouble(double value)
        {
            stream.WriteByte(0xCB);
            WriteBigEndian((ulong)BitConverter.DoubleToInt64Bits(value), 8);
        }

        public void WriteString(string value)
        {
            if (value == null) { WriteNil(); return; }
            byte[] bytes = Encoding.UTF8.GetBytes(value);
            int n = bytes.Length;
            if (n <= 31) stream.WriteByte((byte)(0xA0 | n));
            else if (n <= byte.MaxValue) { stream.WriteByte(0xD9); stream.WriteByte((byte)n); }
            else if (n <= ushort.MaxValue) { stream.WriteByte(0xDA); WriteBigEndian((ulong)n, 2); }
            else { stream.WriteByte(0xDB); WriteBigEndian((ulong)n, 4); }
            stream.Write(bytes, 0, n);
        }

        public void WriteBinary(byte[] value)
        {
            if (value == null) { WriteNil(); return; }
            int n = value.Length;
            if (n <= byte.MaxValue) { stream.WriteByte(0xC4); stream.WriteByte((byte)n); }
            else if (n <= ushort.MaxValue) { stream.WriteByte(0xC5); WriteBigEndian((ulong)n, 2); }
            else { stream.WriteByte(0xC6); WriteBigEndian((ulong)n, 4); }
            stream.Write(value, 0, n);
        }

        public void WriteArrayHeader(int count)
        {
            if (count <= 15) stream.WriteByte((byte)(0x90 | count));
            else if (count <= ushort.MaxValue) { stream.WriteByte(0xDC); WriteBigEndian((ulong)count, 2); }
            else { stream.WriteByte(0xDD); WriteBigEndian((ulong)count, 4); }
        }

        public void WriteMapHeader(int count)
        {
            if (count <= 15) stream.WriteByte((byte)(0x80 | count));
            else if (count <= ushort.MaxValue) { stream.WriteByte(0xDE); WriteBigEndian((ulong)count, 2); }
            else { stream.WriteByte(0xDF); WriteBigEndian((ulong)count, 4); }
        }

        /// <summary>Writes any value of the subset: primitives, string, byte[], IDictionary, IList.</summary>
        public void Write(object value)
        {
            if (value == null) WriteNil();
            else if (value is bool) WriteBool((bool)value);
            else if (value is string) WriteString((string)value);
            else if (value is byte[]) WriteBinary((byte[])value);
            else if (value is float) WriteFloat((float)value);
            else if (value is double) WriteDouble((double)value);
            else if (value is ulong) WriteUInt((ulong)value);
            else if (value is long || value is int || value is short || value is sbyte
                     || value is uint || value is ushort || value is byte)
                WriteInt(Convert.ToInt64(value));
            else if (value is IDictionary)
            {
                var map = (IDictionary)value;
                WriteMapHeader(map.Count);
                foreach (DictionaryEntry entry in map)
                {
                    Write(entry.Key);
                    Write(entry.Value);
                }
            }
            else if (value is IList)
            {
                var list = (IList)value;
                WriteArrayHeader(list.Count);
                foreach (object item in list)
                    Write(item);
            }
            else
                throw new MsgPackException("cannot encode a " + value.GetType().Name + " as msgpack");
        }

        void WriteBigEndian(ulong value, int bytes)
        {
            for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8)
                stream.WriteByte((byte)(value >> shift));
        }
    }

    public sealed class MsgPackReader
    {
        readonly byte[] data;
        readonly int end;
        int position;

        public MsgPackReader(byte[] data, int offset, int count)
        {
            this.data = data;
            position = offset;
            end = offset + count;
        }

        public int Position { get { return position; } }

        public object ReadValue(int depth)
        {
            if (depth > MsgPack.MaxDepth)
                throw new MsgPackException("msgpack nesting deeper than " + MsgPack.MaxDepth);
            byte tag = ReadByte();
            if (tag <= 0x7F) return (long)tag;
            if (tag >= 0xE0) return (long)(sbyte)tag;
            if (tag >= 0xA0 && tag <= 0xBF) return ReadString(tag & 0x1F);
            if (tag >= 0x90 && tag <= 0x9F) return ReadArray(tag & 0x0F, depth);
            if (tag >= 0x80 && tag <= 0x8F) return ReadMap(tag & 0x0F, depth);
            switch (tag)
            {
                case 0xC0: return null;
                case 0xC2: return false;
                case 0xC3: return true;
                case 0xC4: return ReadBytes(ReadLength(1));
                case 0xC5: return ReadBytes(ReadLength(2));
                case 0xC6: return ReadBytes(ReadLength(4));
                case 0xCA: return BitConverter.ToSingle(BitConverter.GetBytes((uint)ReadBigEndian(4)), 0);
                case 0xCB: return BitConverter.Int64BitsToDouble((long)ReadBigEndian(8));
                case 0xCC: return (long)ReadBigEndian(1);
                case 0xCD: return (long)ReadBigEndian(2);
                case 0xCE: return (long)ReadBigEndian(4);
                case 0xCF:
                    ulong big = ReadBigEndian(8);
                    return big <= long.MaxValue ? (object)(long)big : big;
                case 0xD0: return (long)(sbyte)ReadBigEndian(1);
                case 0xD1: return (long)(short)ReadBigEndian(2);
                case 0xD2: return (long)(int)ReadBigEndian(4);
                case 0xD3: return (long)ReadBigEndian(8);
                case 0xD9: return ReadString(ReadLength(1));
                case 0xDA: return ReadString(ReadLength(2));
                case 0xDB: return ReadString(ReadLength(4));
                case 0xDC: return ReadArray(ReadLength(2), depth);
                case 0xDD: return ReadArray(ReadLength(4), depth);
                case 0xDE: return ReadMap(ReadLength(2), depth);
                case 0xDF: return ReadMap(ReadLength(4), depth);
                case 0xC1: throw new MsgPackException("0xC1 is never used in msgpack");
                default: throw new MsgPackException(string.Format("msgpack extension type 0x{0:X2} is not supported", tag));
            }
        }

        List<object> ReadArray(int count, int depth)
        {
            // Each element takes at least one byte: a count beyond the data left is a lie.
            if (count > end - position)
                throw new MsgPackException("msgpack array longer than its data");
            var list = new List<object>(count);
            for (int i = 0; i < count; i++)
                list.Add(ReadValue(depth + 1));
            return list;
        }

        Dictionary<string, object> ReadMap(int count, int depth)
        {
            if (count > (end - position) / 2)
                throw new MsgPackException("msgpack map longer than its data");
            var map = new Dictionary<string, object>(count);
            for (int i = 0; i < count; i++)
            {
                var key = ReadValue(depth + 1) as string;
                if (key == null)
                    throw new MsgPackException("msgpack map keys must be strings here");
                map[key] = ReadValue(depth + 1);
            }
            return map;
        }

        string ReadString(int length)
        {
            Require(length);
            string text = Encoding.UTF8.GetString(data, position, length);
            position += length;
            return text;
        }

        byte[] ReadBytes(int length)
        {
            Require(length);
            var bytes = new byte[length];
            Buffer.BlockCopy(data, position, bytes, 0, length);
            position += length;
            return bytes;
        }

        int ReadLength(int bytes)
        {
            ulong length = ReadBigEndian(bytes);
            if (length > int.MaxValue)
                throw new MsgPackException("msgpack length over 2 GB");
            return (int)length;
        }

        ulong ReadBigEndian(int bytes)
        {
            Require(bytes);
            ulong value = 0;
            for (int i = 0; i < bytes; i++)
                value = (value << 8) | data[position++];
            return value;
        }

        byte ReadByte()
        {
            Require(1);
            return data[position++];
        }

        void Require(int bytes)
        {
            if (bytes > end - position)
                throw new MsgPackException("msgpack data ends in the middle of a value");
        }
    }
}
