namespace HmmEmu.Hardware.Memory;

/// <summary>
/// Device-addressable bytes: host RAM by physical address, or a device's VRAM by offset. Devices reach
/// memory only through a port, one page span at a time, and a bad address is an answer (false), never an
/// exception: the device model turns it into an error status.
/// </summary>
public interface IMemoryPort
{
    /// <summary>The aperture this port serves.</summary>
    Aperture Aperture { get; }

    /// <summary>Bytes addressable through the port (addresses are below this).</summary>
    ulong Size { get; }

    /// <summary>
    /// Gets the bytes at <paramref name="address"/>, at most <paramref name="length"/> long, for reading or (when
    /// <paramref name="write"/>) writing. The span reaches at least to the end of the address's 4 KiB page (or
    /// <paramref name="length"/>), and may go on to the end of a contiguous backing block (2 MiB) but never past
    /// it. Returns false when the address is outside the port or its page may not be accessed that way.
    /// </summary>
    bool TryGetSpan(ulong address, int length, bool write, out Span<byte> span);
}
