namespace HmmEmu.Hardware.Memory;

/// <summary>A device's local memory (VRAM): a flat byte space allocated lazily in 2 MiB chunks.</summary>
public sealed class VramPort : IMemoryPort
{
    private const int ChunkShift = 21;
    private const int ChunkSize = 1 << ChunkShift;

    private readonly byte[]?[] _chunks;

    /// <summary>Creates <paramref name="bytes"/> of VRAM (a positive multiple of 2 MiB), all zero.</summary>
    public VramPort(ulong bytes)
    {
        if (bytes == 0 || bytes % ChunkSize != 0 || bytes > (1UL << 40))
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes,
                "VRAM size must be a positive multiple of 2 MiB and at most 1 TiB.");
        }
        Size = bytes;
        _chunks = new byte[]?[bytes >> ChunkShift];
    }

    /// <inheritdoc />
    public Aperture Aperture => Aperture.Vram;

    /// <inheritdoc />
    public ulong Size { get; }

    /// <inheritdoc />
    public bool TryGetSpan(ulong address, int length, bool write, out Span<byte> span)
    {
        span = default;
        if (length <= 0 || address >= Size)
            return false;
        ref byte[]? slot = ref _chunks[address >> ChunkShift];
        var chunk = Volatile.Read(ref slot);
        if (chunk is null)
        {
            var fresh = new byte[ChunkSize];
            chunk = Interlocked.CompareExchange(ref slot, fresh, null) ?? fresh;
        }
        int offset = (int)(address & (ChunkSize - 1));
        span = chunk.AsSpan(offset, Math.Min(length, ChunkSize - offset));
        return true;
    }
}
