using HmmEmu.Hardware.Memory;

namespace HmmEmu.Hardware.Tests.Rings;

/// <summary>A VRAM-backed port whose reads and writes can be made to fail, to model memory that vanished under a ring.</summary>
internal sealed class SwitchablePort(ulong bytes) : IMemoryPort
{
    private readonly VramPort _inner = new(bytes);

    public bool Broken { get; set; }

    public Aperture Aperture => _inner.Aperture;

    public ulong Size => _inner.Size;

    public bool TryGetSpan(ulong address, int length, bool write, out Span<byte> span)
    {
        if (Broken)
        {
            span = default;
            return false;
        }
        return _inner.TryGetSpan(address, length, write, out span);
    }
}
