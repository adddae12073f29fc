using System.Runtime.InteropServices;

namespace HmmEmu.Hardware;

/// <summary>
/// A 64-bit counter alone on its cache line: 64 bytes of padding before it and after it, so that threads writing
/// the fields around it do not move its line between processors, nor it theirs.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 136)]
internal struct PaddedCounter
{
    /// <summary>The count. Use <see cref="Interlocked"/> and <see cref="Volatile"/> on it as on a plain field.</summary>
    [FieldOffset(64)]
    public long Value;
}
