using System.Buffers.Binary;

namespace HmmEmu.Hardware.Memory;

/// <summary>Little-endian loads, stores and copies over an <see cref="IMemoryPort"/>, crossing pages as needed.</summary>
public static class MemoryPortExtensions
{
    /// <summary>Reads <paramref name="destination"/>.Length bytes at <paramref name="address"/>; false if any byte is unreachable.</summary>
    public static bool TryRead(this IMemoryPort port, ulong address, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            if (!port.TryGetSpan(address, destination.Length, write: false, out var span))
                return false;
            span.CopyTo(destination);
            destination = destination[span.Length..];
            address += (ulong)span.Length;
        }
        return true;
    }

    /// <summary>Writes <paramref name="source"/> at <paramref name="address"/>; false (with nothing written) if any byte is unreachable.</summary>
    public static bool TryWrite(this IMemoryPort port, ulong address, ReadOnlySpan<byte> source)
    {
        // Check the whole range first so a failing write leaves memory untouched.
        for (ulong a = address, left = (ulong)source.Length; left > 0;)
        {
            if (!port.TryGetSpan(a, (int)Math.Min(left, int.MaxValue), write: true, out var probe))
                return false;
            a += (ulong)probe.Length;
            left -= (ulong)probe.Length;
        }
        while (!source.IsEmpty)
        {
            port.TryGetSpan(address, source.Length, write: true, out var span);
            source[..span.Length].CopyTo(span);
            source = source[span.Length..];
            address += (ulong)span.Length;
        }
        return true;
    }

    /// <summary>Reads a little-endian 32-bit value.</summary>
    public static bool TryReadUInt32(this IMemoryPort port, ulong address, out uint value)
    {
        Span<byte> b = stackalloc byte[4];
        bool ok = port.TryRead(address, b);
        value = ok ? BinaryPrimitives.ReadUInt32LittleEndian(b) : 0;
        return ok;
    }

    /// <summary>Reads a little-endian 64-bit value.</summary>
    public static bool TryReadUInt64(this IMemoryPort port, ulong address, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        bool ok = port.TryRead(address, b);
        value = ok ? BinaryPrimitives.ReadUInt64LittleEndian(b) : 0;
        return ok;
    }

    /// <summary>Writes a little-endian 32-bit value.</summary>
    public static bool TryWriteUInt32(this IMemoryPort port, ulong address, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return port.TryWrite(address, b);
    }

    /// <summary>Writes a little-endian 64-bit value.</summary>
    public static bool TryWriteUInt64(this IMemoryPort port, ulong address, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        return port.TryWrite(address, b);
    }
}
